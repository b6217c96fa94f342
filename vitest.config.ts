import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      { test: { name: "cli", root: "./cli", include: ["test/**/*.test.ts"] } },
      { test: { name: "config", root: "./config", include: ["test/**/*.test.ts"] } },
      { test: { name: "testing", root: "./testing", include: ["test/**/*.test.ts"] } },
      // The SRE entry points (deploy, scale-out); the scale-out checks against a real cluster run when CITUS_URL is set.
      { test: { name: "scripts", root: "./scripts", include: ["test/**/*.test.ts"], testTimeout: 60_000 } },
      // Starts its own PostgreSQL servers; runs the Citus suite too when CITUS_URL is set.
      // One file at a time: with CITUS_URL the files share one cluster and its platform schema, and one file's writers
      // would make another's shard operation see live writes it did not start (and verify it as such).
      { test: { name: "citus", root: "./citus", include: ["test/**/*.test.ts"], testTimeout: 60_000, hookTimeout: 120_000, fileParallelism: false } },
      { test: { name: "tenant-service", root: "./services/tenant-service", include: ["test/**/*.test.ts"], testTimeout: 60_000, hookTimeout: 120_000 } },
      { test: { name: "k8s", root: "./k8s", include: ["test/**/*.test.ts"], testTimeout: 60_000, hookTimeout: 120_000 } },
      { test: { name: "monitoring", root: "./monitoring", include: ["test/**/*.test.ts"], testTimeout: 60_000 } },
      // Synthesizes the three stacks once per run (test/global-setup.ts) and hands them to every file (inject).
      { test: { name: "infra", root: "./infra", include: ["test/**/*.test.ts"], globalSetup: ["./test/global-setup.ts"], testTimeout: 120_000, hookTimeout: 300_000 } },
    ],
  },
});
