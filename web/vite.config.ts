// Builds web/src into web/dist, which the Starlette app serves at `/` (rpc/web.py).
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Hashed file names under /assets/: the server caches them for a year, index.html never.
    assetsDir: 'assets',
    sourcemap: false,
  },
});
