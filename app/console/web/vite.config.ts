// Builds the console page into dist/ (index.html + hashed assets/), which
// whistle-console serves with --assets. No inline script or style: the gateway
// sends `Content-Security-Policy: default-src 'self'`.
import { defineConfig } from "vite";

export default defineConfig({
  base: "./",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // Never inline assets as data: URLs (CSP) and keep the module preload
    // polyfill out (it would be an inline script in older Vite versions).
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    cssCodeSplit: false,
    chunkSizeWarningLimit: 800,
  },
  server: {
    // `npm run dev` against a running gateway (WHISTLE_CONSOLE, default 127.0.0.1:7480).
    proxy: {
      "/api": { target: `http://${process.env.WHISTLE_CONSOLE ?? "127.0.0.1:7480"}`, changeOrigin: false },
    },
  },
});
