/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

/** `npm run dev` forwards /api to a running Keyway (KEYWAY_URL, default 127.0.0.1:8765). */
const keyway = process.env.KEYWAY_URL ?? 'http://127.0.0.1:8765';

export default defineConfig({
  base: '/',
  plugins: [svelte()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 200,
  },
  server: {
    proxy: {
      '/api': {
        target: keyway,
        changeOrigin: true,
        headers: { origin: keyway },
      },
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
