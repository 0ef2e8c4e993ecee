import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, LOCAL_JWT_SECRET, loadConfig } from "../../shared/config.ts";
import { ROOT } from "../../scripts/lib/local.ts";

describe("configuration", () => {
  it("defaults to the local stack: PGlite under .sigyl, port 54321, Supabase's local JWT secret", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ production: false, databaseUrl: null, port: 54321, host: "127.0.0.1", dataDir: ".sigyl/pglite" });
    expect(c.auth).toEqual({ jwks: undefined, jwksUrl: undefined, jwtSecret: LOCAL_JWT_SECRET, serviceKeys: [] });
  });

  it("refuses the public local JWT secret, or no way to verify users at all, in production", () => {
    expect(() => loadConfig({ SB_REGION: "eu-west-1" })).toThrow(ConfigError);
    expect(() => loadConfig({ SIGYL_ENV: "production", SUPABASE_JWT_SECRET: LOCAL_JWT_SECRET })).toThrow(/local development JWT secret/);
    expect(() => loadConfig({ SB_REGION: "eu-west-1", SIGYL_JWT_SECRET: LOCAL_JWT_SECRET })).toThrow(/local development JWT secret/);
    // Supabase's CLI hands its local secret as a symmetric key of the key set: refused the same.
    const cliKeySet = JSON.stringify({ keys: [{ kty: "oct", k: Buffer.from(LOCAL_JWT_SECRET).toString("base64url") }] });
    expect(() => loadConfig({ SB_REGION: "eu-west-1", SUPABASE_JWKS: cliKeySet })).toThrow(/local development JWT secret/);
    expect(loadConfig({ SUPABASE_JWKS: cliKeySet }).production).toBe(false);
    const hosted = loadConfig({ SB_REGION: "eu-west-1", SIGYL_JWT_SECRET: "x".repeat(40), SUPABASE_DB_URL: "postgresql://u@h/db" });
    expect(hosted).toMatchObject({ production: true, databaseUrl: "postgresql://u@h/db" });
  });

  it("production with nothing to verify users by refuses in one message that names what to set", () => {
    const refusal = (env: Record<string, string>) => {
      try {
        loadConfig(env, { defaultEnv: "production" });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error("it started");
    };
    expect(refusal({ SB_REGION: "eu-west-1" })).toBe(
      "no way to verify user tokens: SUPABASE_JWKS and SUPABASE_URL are unset (the Supabase platform sets both for every " +
        "function) and SIGYL_JWT_SECRET is not set",
    );
    // The service role alone does not make a service for users.
    expect(refusal({ SB_REGION: "eu-west-1", SUPABASE_SECRET_KEYS: '{"default":"sb_secret_0123456789abcdefghij"}' }))
      .toMatch(/^no way to verify user tokens/);
    // A project still on its legacy secret: the platform's key set is empty.
    expect(refusal({ SB_REGION: "eu-west-1", SUPABASE_JWKS: '{"keys":[]}', SUPABASE_URL: "https://ref.supabase.co" }))
      .toMatch(/SUPABASE_JWKS holds no signing key.*set SIGYL_JWT_SECRET/);
    // A self-hosted stack's internal http URL is no safe place to fetch keys from.
    expect(refusal({ SB_REGION: "eu-west-1", SUPABASE_URL: "http://kong:8000" }))
      .toMatch(/^no way to verify user tokens: SUPABASE_JWKS is unset, the key set is not fetched from SUPABASE_URL=http:\/\/kong:8000 \(https only/);
  });

  it("starts hosted with only the platform's variables: key set, secret keys, region", () => {
    const jwks = { keys: [{ kty: "EC", crv: "P-256", x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", kid: "k1", alg: "ES256" }] };
    const c = loadConfig({
      SUPABASE_JWKS: JSON.stringify(jwks),
      SUPABASE_SECRET_KEYS: '{"default":"sb_secret_0123456789abcdefghij","ci":"sb_secret_abcdefghij0123456789"}',
      SB_REGION: "eu-west-1",
    }, { defaultEnv: "production" });
    expect(c.production).toBe(true);
    expect(c.auth).toEqual({
      jwks, jwksUrl: undefined, jwtSecret: undefined,
      serviceKeys: ["sb_secret_0123456789abcdefghij", "sb_secret_abcdefghij0123456789"],
    });
  });

  it("finds the key set where @supabase/server does: inline, SUPABASE_JWKS_URL, then the project URL", () => {
    const inline = '[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]';
    const all = {
      SUPABASE_JWKS: inline, SUPABASE_JWKS_URL: "https://keys.example/jwks.json",
      SUPABASE_PUBLIC_URL: "https://public.example", SUPABASE_URL: "https://ref.supabase.co/",
    };
    const { SUPABASE_JWKS: _a, ...noInline } = all;
    const { SUPABASE_JWKS_URL: _b, ...noUrl } = noInline;
    const { SUPABASE_PUBLIC_URL: _c, ...onlyProject } = noUrl;
    expect(loadConfig(all).auth).toMatchObject({ jwks: { keys: JSON.parse(inline) }, jwksUrl: undefined });
    expect(loadConfig(noInline).auth).toMatchObject({ jwks: undefined, jwksUrl: "https://keys.example/jwks.json" });
    expect(loadConfig(noUrl).auth.jwksUrl).toBe("https://public.example/auth/v1/.well-known/jwks.json");
    expect(loadConfig(onlyProject).auth.jwksUrl).toBe("https://ref.supabase.co/auth/v1/.well-known/jwks.json");
    expect(loadConfig({ SUPABASE_URL: "http://127.0.0.1:54321" }).auth.jwksUrl).toBe("http://127.0.0.1:54321/auth/v1/.well-known/jwks.json");
    expect(loadConfig({ SUPABASE_URL: "http://kong:8000" }).auth.jwksUrl).toBeUndefined();
    expect(loadConfig({ SUPABASE_JWKS: "  " }).auth.jwks).toBeUndefined();
    expect(() => loadConfig({ SUPABASE_JWKS_URL: "http://keys.example/jwks.json" })).toThrow(/SUPABASE_JWKS_URL: must be https/);
  });

  it("takes the service role's keys from every entry of SUPABASE_SECRET_KEYS, then the singular and legacy ones", () => {
    const keys = (env: Record<string, string>) => loadConfig(env).auth.serviceKeys;
    expect(keys({})).toEqual([]);
    expect(keys({ SUPABASE_SECRET_KEY: "sb_secret_singular-key-0123456789" })).toEqual(["sb_secret_singular-key-0123456789"]);
    expect(keys({ SUPABASE_SECRET_KEYS: '{"a":"sb_secret_aaaaaaaaaaaaaaaaaaaa"}', SUPABASE_SECRET_KEY: "sb_secret_singular-key-0123456789" }))
      .toEqual(["sb_secret_aaaaaaaaaaaaaaaaaaaa"]);
    expect(keys({ SUPABASE_SECRET_KEYS: '{"a":"sb_secret_aaaaaaaaaaaaaaaaaaaa"}', SUPABASE_SERVICE_ROLE_KEY: "eyJ.legacy.service-role-key" }))
      .toEqual(["sb_secret_aaaaaaaaaaaaaaaaaaaa", "eyJ.legacy.service-role-key"]);
    expect(keys({ SUPABASE_SERVICE_ROLE_KEY: "eyJ.legacy.service-role-key", SIGYL_ACCEPT_SERVICE_ROLE_KEY: "false" })).toEqual([]);
    expect(() => keys({ SUPABASE_SECRET_KEYS: '{"default":"sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"}' })).toThrow(/publishable key/);
  });

  it("refuses malformed platform variables, a private key in the key set, and two differing JWT secrets", () => {
    expect(() => loadConfig({ SUPABASE_JWKS: "{not json" })).toThrow(/SUPABASE_JWKS: is not JSON/);
    expect(() => loadConfig({ SUPABASE_JWKS: '{"kid":"k1"}' })).toThrow(/SUPABASE_JWKS: expected a JSON Web Key Set/);
    expect(() => loadConfig({ SUPABASE_SECRET_KEYS: '["sb_secret_aaaaaaaaaaaaaaaaaaaa"]' })).toThrow(/SUPABASE_SECRET_KEYS/);
    expect(() => loadConfig({ SUPABASE_SECRET_KEYS: '{"default":""}' })).toThrow(/SUPABASE_SECRET_KEYS/);
    expect(() => loadConfig({ SUPABASE_JWKS: '{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"c"}]}' })).toThrow(/private key/);
    expect(() => loadConfig({ SIGYL_JWT_SECRET: "a".repeat(40), SUPABASE_JWT_SECRET: "b".repeat(40) })).toThrow(/differ/);
    expect(loadConfig({ SIGYL_JWT_SECRET: "a".repeat(40), SUPABASE_JWT_SECRET: "a".repeat(40) }).auth.jwtSecret).toBe("a".repeat(40));
    expect(loadConfig({ SUPABASE_JWT_SECRET: "b".repeat(40) }).auth.jwtSecret).toBe("b".repeat(40));
  });

  it("the edge function's entry fails closed: production unless SIGYL_ENV=local, and always where SB_REGION is set", () => {
    expect(() => loadConfig({}, { defaultEnv: "production" })).toThrow(/no way to verify user tokens/);
    expect(loadConfig({ SIGYL_ENV: "local" }, { defaultEnv: "production" }).auth.jwtSecret).toBe(LOCAL_JWT_SECRET);
    expect(() => loadConfig({ SIGYL_ENV: "local", SB_REGION: "eu-west-1" })).toThrow(/no way to verify user tokens/);
  });

  it("names the offending variable in one message", () => {
    expect(() => loadConfig({ PORT: "http" })).toThrow(/PORT/);
    expect(() => loadConfig({ SUPABASE_JWT_SECRET: "short" })).toThrow(/SUPABASE_JWT_SECRET/);
    expect(() => loadConfig({ SIGYL_JWT_SECRET: "short" })).toThrow(/SIGYL_JWT_SECRET/);
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
