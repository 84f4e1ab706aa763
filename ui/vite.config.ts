/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";

// Two builds from one source tree:
// - production (`vite build`): index.html only, into dist/ — what Tauri ships (frontendDist: "ui/dist").
// - mock (`vite build --mode mock`): mock.html, which installs a fixture backend behind Tauri's IPC
//   mocks, into dist-mock/ — what the browser tests drive. Keeping it a separate entry keeps the
//   fixtures out of the production bundle.
export default defineConfig(({ mode }) => {
  const mock = mode === "mock";
  return {
    plugins: [svelte()],
    // Relative asset URLs: the bundle is loaded from Tauri's custom protocol, not a server root.
    base: "./",
    clearScreen: false,
    build: {
      outDir: mock ? "dist-mock" : "dist",
      emptyOutDir: true,
      target: "es2022",
      rolldownOptions: {
        input: mock ? "mock.html" : "index.html",
      },
    },
    // Tests run Svelte's browser runtime (effects, flushSync), not its server build.
    resolve: process.env.VITEST ? { conditions: ["browser"] } : undefined,
    test: {
      environment: "happy-dom",
      include: ["src/**/*.test.ts"],
    },
  };
});
