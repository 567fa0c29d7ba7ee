import { defineConfig } from "vitest/config";

// Two projects: `unit` (pure modules and the app server against loopback mocks, seconds) and
// `e2e` (a real Chromium through the whole chain, run after a build, one file at a time).
export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["test/unit/**/*.test.ts"], environment: "node" } },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
