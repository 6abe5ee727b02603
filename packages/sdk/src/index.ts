/**
 * `@verity/sdk`: a client for Verity nodes that verifies every answer before returning it.
 *
 * @packageDocumentation
 */
export {};
