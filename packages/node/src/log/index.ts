/**
 * The node's durable signed log: group-committed appends, receipts, proofs and C2SP tlog tiles.
 */
export { DEFAULT_MAX_BATCH, type NodeLog, type OpenLogOptions } from './node-log.js';
export { openLog } from './open-log.js';
export { receiptJson } from './receipt-json.js';
export { entriesPath, parseTilePath, TILE_HEIGHT, TILE_WIDTH, type TilePath, tilePath } from './tile-path.js';
