/**
 * C2SP tlog-tiles resource paths (https://c2sp.org/tlog-tiles, "Merkle Tree" and "Log entries"):
 *
 *   tile/<L>/<N>[.p/<W>]        hash tile: level L (0–63), index N, partial width W (1–255)
 *   tile/entries/<N>[.p/<W>]    entry bundle
 *
 * N is written in zero-padded 3-digit path elements, all but the last prefixed with `x`
 * (1234067 → `x001/x234/067`). Parsing is strict: a path is accepted only if it is exactly what
 * {@link tilePath} / {@link entriesPath} write for the values it names (no leading zeros, no
 * `x000` groups, no `.p/256`), so one resource has one URL and a CDN caches it once.
 */
import { VerityError } from '@verity/protocol';

/** Hashes (or entries) in a full tile. */
export const TILE_WIDTH = 256;
/** Tree levels per tile level (tile height). */
export const TILE_HEIGHT = 8;
/** Highest tile level the spec allows. */
export const MAX_TILE_LEVEL = 63;

/** A parsed tile path. `width` is absent for a full tile. */
export type TilePath =
  | { readonly kind: 'hash'; readonly level: number; readonly index: number; readonly width?: number }
  | { readonly kind: 'entries'; readonly index: number; readonly width?: number };

function invalid(message: string, details: Record<string, unknown>): never {
  throw new VerityError('INVALID_ARGUMENT', message, { details });
}

function checkIndexWidth(index: number, width: number | undefined): void {
  if (!Number.isSafeInteger(index) || index < 0) invalid('tile index must be a non-negative safe integer', { index });
  if (width !== undefined && (!Number.isInteger(width) || width < 1 || width > TILE_WIDTH)) {
    invalid('tile width must be 1–256', { width });
  }
}

function indexPath(index: number): string {
  let n = index;
  let out = String(n % 1000).padStart(3, '0');
  while (n >= 1000) {
    n = Math.floor(n / 1000);
    out = `x${String(n % 1000).padStart(3, '0')}/${out}`;
  }
  return out;
}

function suffix(width: number | undefined): string {
  return width === undefined || width === TILE_WIDTH ? '' : `.p/${width}`;
}

/**
 * The path of a hash tile. A width of 256 (or none) is a full tile.
 *
 * @example
 * ```ts
 * tilePath(0, 1234067)     // 'tile/0/x001/x234/067'
 * tilePath(1, 0, 17)       // 'tile/1/000.p/17'
 * ```
 */
export function tilePath(level: number, index: number, width?: number): string {
  if (!Number.isInteger(level) || level < 0 || level > MAX_TILE_LEVEL) invalid('tile level must be 0–63', { level });
  checkIndexWidth(index, width);
  return `tile/${level}/${indexPath(index)}${suffix(width)}`;
}

/**
 * The path of an entry bundle.
 *
 * @example
 * ```ts
 * entriesPath(1234067, 3)  // 'tile/entries/x001/x234/067.p/3'
 * ```
 */
export function entriesPath(index: number, width?: number): string {
  checkIndexWidth(index, width);
  return `tile/entries/${indexPath(index)}${suffix(width)}`;
}

const TILE_PATH = /^tile\/(entries|0|[1-9][0-9]?)\/((?:x[0-9]{3}\/)*[0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/;

function notFound(path: string): never {
  throw new VerityError('NOT_FOUND', 'not a tlog-tiles path', { details: { path: path.slice(0, 200) } });
}

/**
 * Parses a tile or entry-bundle path, strictly: anything that {@link tilePath} or
 * {@link entriesPath} would not write is `NOT_FOUND` (what a static tile server answers).
 *
 * @example
 * ```ts
 * parseTilePath('tile/0/x001/x234/067')      // { kind: 'hash', level: 0, index: 1234067 }
 * parseTilePath('tile/entries/000.p/5')      // { kind: 'entries', index: 0, width: 5 }
 * ```
 */
export function parseTilePath(path: string): TilePath {
  if (typeof path !== 'string' || path.length > 64) notFound(String(path));
  const m = TILE_PATH.exec(path);
  if (!m) notFound(path);
  const [, levelText, indexText, widthText] = m as unknown as [string, string, string, string | undefined];
  let index = 0;
  for (const group of indexText.split('/')) index = index * 1000 + Number(group.replace('x', ''));
  const width = widthText === undefined ? undefined : Number(widthText);
  if (!Number.isSafeInteger(index) || (width !== undefined && width >= TILE_WIDTH)) notFound(path);
  const level = levelText === 'entries' ? undefined : Number(levelText);
  if (level !== undefined && level > MAX_TILE_LEVEL) notFound(path);
  const parsed: TilePath =
    level === undefined
      ? { kind: 'entries', index, ...(width === undefined ? {} : { width }) }
      : { kind: 'hash', level, index, ...(width === undefined ? {} : { width }) };
  // Canonical form only: e.g. 'x000/001' or '001' for index 1000 names nothing.
  const canonical = level === undefined ? entriesPath(index, width) : tilePath(level, index, width);
  if (canonical !== path) notFound(path);
  return parsed;
}
