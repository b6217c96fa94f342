import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      { test: { name: "config", root: "./config", include: ["test/**/*.test.ts"] } },
    ],
  },
});
