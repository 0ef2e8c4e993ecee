import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    globalSetup: ["tests/helpers/global-setup.ts"],
    // Generous: several suites start Deno servers and migrate PGlite, which a loaded two-core
    // machine slows several-fold; a hang still fails, in two minutes.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // expect.poll's own default (1 s) is tight for a browser fetch and render on such a machine.
    expect: { poll: { timeout: 10_000 } },
    pool: "forks",
    maxWorkers: 2,
    reporters: ["default"],
  },
});
