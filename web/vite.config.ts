import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));

/**
 * The console as static files in web/dist. `base: "./"` so any static host can serve it from
 * any path; no inline script or style is emitted, so a strict Content-Security-Policy holds.
 */
export default defineConfig({
  root,
  base: "./",
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // The modulepreload polyfill is code in the entry chunk, never inline; still no inline assets.
    assetsInlineLimit: 0,
    sourcemap: false,
  },
  server: { fs: { allow: [fileURLToPath(new URL("..", import.meta.url))] } },
});
