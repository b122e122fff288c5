// The web console's build: one origin with the API (Envoy serves both), so no CORS and no base URL to configure.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig, type Plugin } from "vite";

const generated = fileURLToPath(new URL("../gen/ts", import.meta.url));
// The stack `make run` started: `. .run/env` sets NOVASPHERE_HTTP to its Envoy listener. Its certificate is from the
// local CA, which this loopback-only dev proxy does not check (secure: false).
const api = process.env.NOVASPHERE_HTTP ?? "https://127.0.0.1:8443";

// The REST API's reference page, served at /api/docs: api-docs/ and Swagger UI's prebuilt bundle, copied as they are
// into dist/api-docs/ (no CDN: the page loads nothing from outside its origin).
function apiDocs(): Plugin {
  const files: Record<string, URL> = {
    "index.html": new URL("api-docs/index.html", import.meta.url),
    "start.js": new URL("api-docs/start.js", import.meta.url),
    "swagger-ui-bundle.js": new URL("node_modules/swagger-ui-dist/swagger-ui-bundle.js", import.meta.url),
    "swagger-ui.css": new URL("node_modules/swagger-ui-dist/swagger-ui.css", import.meta.url),
  };
  return {
    name: "api-docs",
    apply: "build",
    generateBundle() {
      for (const [name, source] of Object.entries(files)) {
        this.emitFile({ type: "asset", fileName: `api-docs/${name}`, source: readFileSync(source) });
      }
    },
  };
}

export default defineConfig({
  plugins: [react(), apiDocs()],
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
