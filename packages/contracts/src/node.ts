/**
 * `@verity/contracts/node`: the parts that need Node (a child process, files): a local anvil and
 * deployment files. Everything else is in the main entry, which runs in browsers too.
 *
 * @packageDocumentation
 */
export { type Anvil, type AnvilOptions, anvilBinaryPath, startAnvil } from './anvil.js';
export { readDeploymentFile, writeDeploymentFile } from './deployment-file.js';
