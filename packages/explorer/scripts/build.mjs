/**
 * `npm run build` for the explorer: Vite builds into a staging folder of its own, then the pages
 * move into `dist/site` file by file, each by an atomic rename, an unchanged file left as it is,
 * and files of an older build removed last. Nodes read `dist/site` on every request
 * (packages/node/src/api/routes-explorer.ts): a build made while nodes run, such as a second
 * `npm test` in the same checkout, never leaves them a missing or half-written page (Vite's own
 * `emptyOutDir` deletes the folder first).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const site = join(root, 'dist', 'site');
const staging = join(root, 'dist', `.site-${process.pid}`);

/** Every file under `dir`, as paths relative to it. */
async function files(dir) {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

try {
  await build({ root, configFile: join(root, 'vite.config.ts'), build: { outDir: staging, emptyOutDir: true } });
  const fresh = await files(staging);
  // Assets first, index.html last: a page never names an asset that is not there yet.
  fresh.sort((a, b) => (a === 'index.html') - (b === 'index.html'));
  for (const file of fresh) {
    const from = join(staging, file);
    const to = join(site, file);
    if (existsSync(to) && readFileSync(to).equals(readFileSync(from))) continue;
    await mkdir(dirname(to), { recursive: true });
    await rename(from, to);
  }
  const kept = new Set(fresh);
  for (const file of await files(site)) if (!kept.has(file)) await rm(join(site, file), { force: true });
} finally {
  await rm(staging, { recursive: true, force: true });
}
