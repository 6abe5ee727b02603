import { defineConfig } from 'vite';

// The explorer is static files served by every node at `/` (packages/node/src/api/routes-explorer.ts):
// index.html, then content-hashed assets under /assets/, each page its own chunk loaded on demand.
export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  logLevel: 'warn',
  build: {
    // `npm run build` (scripts/build.mjs) builds into a staging folder and moves the pages here.
    outDir: 'dist/site',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 2048,
  },
});
