// The web console's build: one origin with the API (Envoy serves both), so no CORS and no base URL to configure.
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const generated = fileURLToPath(new URL("../gen/ts", import.meta.url));
// The stack `make run` started: `. .run/env` sets NOVASPHERE_HTTP to its Envoy listener. Its certificate is from the
// local CA, which this loopback-only dev proxy does not check (secure: false).
const api = process.env.NOVASPHERE_HTTP ?? "https://127.0.0.1:8443";

export default defineConfig({
  plugins: [react()],
  resolve: {
    alias: { "@gen": generated },
    // gen/ts sits outside web/: its imports of the protobuf runtime must resolve to web/'s copy.
    dedupe: ["@bufbuild/protobuf"],
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    fs: { allow: [".", generated] },
    proxy: {
      "/novasphere.v1.": { target: api, secure: false, changeOrigin: true },
      "/api/": { target: api, secure: false, changeOrigin: true },
      "/ws/": { target: api, secure: false, changeOrigin: true, ws: true },
    },
  },
});
