/**
 * `@verity/node`: the Verity daemon — model store, runtimes, executor, signed log and HTTP API.
 *
 * @packageDocumentation
 */
export {};
