/**
 * `@verity/contracts`: Verity's contracts (issue 5) — node registry, model registry, log
 * anchors. Under construction.
 *
 * @packageDocumentation
 */
export {};
