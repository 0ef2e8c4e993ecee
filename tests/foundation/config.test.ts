import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, LOCAL_JWT_SECRET, loadConfig } from "../../shared/config.ts";
import { ROOT } from "../../scripts/lib/local.ts";

describe("configuration", () => {
  it("defaults to the local stack: PGlite under .sigyl, port 54321, Supabase's local JWT secret", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ production: false, databaseUrl: null, port: 54321, host: "127.0.0.1", dataDir: ".sigyl/pglite" });
    expect(c.auth.jwtSecret).toBe(LOCAL_JWT_SECRET);
  });

  it("refuses the public local JWT secret, or no key at all, in production", () => {
    expect(() => loadConfig({ SB_REGION: "eu-west-1" })).toThrow(ConfigError);
    expect(() => loadConfig({ SIGYL_ENV: "production", SUPABASE_JWT_SECRET: LOCAL_JWT_SECRET })).toThrow(/local development JWT secret/);
    const hosted = loadConfig({ SB_REGION: "eu-west-1", SUPABASE_JWT_SECRET: "x".repeat(40), SUPABASE_DB_URL: "postgresql://u@h/db" });
    expect(hosted).toMatchObject({ production: true, databaseUrl: "postgresql://u@h/db" });
  });

  it("the edge function's entry fails closed: production unless SIGYL_ENV=local", () => {
    expect(() => loadConfig({}, { defaultEnv: "production" })).toThrow(/required in production/);
    expect(loadConfig({ SIGYL_ENV: "local" }, { defaultEnv: "production" }).auth.jwtSecret).toBe(LOCAL_JWT_SECRET);
  });

  it("names the offending variable in one message", () => {
    expect(() => loadConfig({ PORT: "http" })).toThrow(/PORT/);
    expect(() => loadConfig({ SUPABASE_JWT_SECRET: "short" })).toThrow(/SUPABASE_JWT_SECRET/);
  });

  it("Deno's import map pins the same package versions as package.json", async () => {
    const deno = JSON.parse(await readFile(join(ROOT, "deno.json"), "utf8"));
    const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8"));
    const deps = { ...pkg.dependencies, ...pkg.devDependencies };
    for (const [name, spec] of Object.entries<string>(deno.imports)) {
      const m = spec.match(/^npm:\/?((?:@[^/]+\/)?[^@/]+)@([^/]+)/);
      expect(m, name).not.toBeNull();
      expect(deps[m![1]], `${name} → ${spec}`).toBe(m![2]);
    }
  });
});
