import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      { test: { name: "config", root: "./config", include: ["test/**/*.test.ts"] } },
      // Synthesis of three stacks happens once per file in beforeAll: give it room on a 2-core CI machine.
      { test: { name: "infra", root: "./infra", include: ["test/**/*.test.ts"], testTimeout: 120_000, hookTimeout: 300_000 } },
    ],
  },
});
