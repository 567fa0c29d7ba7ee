import { defineConfig } from "vite";

// The front end builds to dist/web, which the app server serves. `npm run dev:web` (Vite's dev
// server with hot reload) forwards /api to an app server already running on APP_PORT.
export default defineConfig({
  build: { outDir: "dist/web", emptyOutDir: true, sourcemap: true, target: "es2022" },
  server: {
    host: "127.0.0.1",
    proxy: { "/api": `http://127.0.0.1:${process.env.APP_PORT ?? "3000"}` },
  },
});
