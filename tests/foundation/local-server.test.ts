/**
 * `npm start` and `npm run token` as a new user runs them: the Deno server on embedded PGlite
 * (or DATABASE_URL), its URL and health, tokens, a clean Ctrl-C, data kept across restarts,
 * and one-line failures for a busy port or an unreachable database. Authentication runs the
 * hosted path end to end: ES256 user tokens under the key set the server publishes, and the
 * service role by its `sb_secret_` key.
 */
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKeyPair, SignJWT } from "jose";
import { afterAll, describe, expect, it } from "vitest";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import { LOCAL_KEYS_FILE } from "../../scripts/lib/local.ts";
import { eventually, freePort, runDeno, startServer, stopProcess } from "../helpers/processes.ts";
import { describeOrSkip, needsPostgres } from "../helpers/skip.ts";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe("npm start on embedded PGlite", () => {
  it("serves health within 30 s, issues working tokens, stops cleanly on Ctrl-C and keeps its data", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "sigyl-data-"));
    dirs.push(dataDir);
    const env = { SIGYL_DATA_DIR: dataDir, DATABASE_URL: undefined };
    const first = await startServer(env);
    expect(first.bootMs).toBeLessThan(30_000);
    expect(first.health.data.database).toMatchObject({ kind: "pglite", reachable: true });
    expect(first.server.output()).toContain(`serving ${first.base}`);
    expect(first.server.output()).toContain("embedded PGlite");
    expect(first.server.output()).toContain("npm run token");

    // Interactive API docs at a printed URL: no inline script, the bundle and initializer from this origin.
    const docsOrigin = new URL(first.base).origin;
    expect(first.server.output()).toContain(`API docs: ${docsOrigin}/docs/`);
    const page = await fetch(`${docsOrigin}/docs/`);
    expect(page.status).toBe(200);
    const csp = page.headers.get("content-security-policy")!;
    expect(csp.split("; ")).toContain("script-src 'self'");
    const html = await page.text();
    const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.map((m) => m[1].trim())).toEqual(['src="swagger-ui-bundle.js"', 'src="docs.js"']);
    expect(scripts.every((m) => m[2] === "")).toBe(true);
    for (const [file, type] of [["docs.js", "text/javascript"], ["swagger-ui-bundle.js", "text/javascript"], ["swagger-ui.css", "text/css"]]) {
      const res = await fetch(`${docsOrigin}/docs/${file}`);
      expect(res.status, file).toBe(200);
      expect(res.headers.get("content-type"), file).toMatch(new RegExp(`^${type}`));
      expect((await res.arrayBuffer()).byteLength, file).toBeGreaterThan(100);
    }
    expect((await fetch(`${docsOrigin}/docs/../package.json`)).status).toBe(404);
    expect((await fetch(`${docsOrigin}/docs/swagger-ui-bundle.js.map`)).status).toBe(404);

    const tokenRun = await runDeno("scripts/token.ts", ["alice@example.com"], { ...env, PORT: String(first.port) });
    expect(tokenRun.code).toBe(0);
    const token = tokenRun.stdout.trim();
    expect(token.split(".")).toHaveLength(3);
    const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
    expect(claims).toMatchObject({ email: "alice@example.com", role: "authenticated", aud: "authenticated" });
    for (const k of ["sub", "iat", "exp", "session_id"]) expect(claims[k]).toBeTruthy();

    const created = await fetch(first.base, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "KEPT", value: "kept-across-restarts" }),
    });
    expect(created.status).toBe(201);

    // The key set the server publishes, where Supabase Auth publishes a project's: public keys only.
    const origin = `http://127.0.0.1:${first.port}`;
    const jwksRes = await fetch(`${origin}/auth/v1/.well-known/jwks.json`);
    expect(jwksRes.status).toBe(200);
    const jwks = await jwksRes.json();
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
    expect(Object.keys(jwks.keys[0]).sort()).toEqual(["alg", "crv", "ext", "key_ops", "kid", "kty", "use", "x", "y"]);
    expect(JSON.stringify(jwks)).not.toContain('"d"');
    // The user token is ES256 under that key, as Supabase Auth signs hosted.
    const header = JSON.parse(Buffer.from(token.split(".")[0], "base64url").toString());
    expect(header).toEqual({ alg: "ES256", kid: jwks.keys[0].kid, typ: "JWT" });
    expect(claims.iss).toBe(`${origin}/auth/v1`);
    // The keys are in the data dir, readable by their owner only.
    const keysPath = join(dataDir, LOCAL_KEYS_FILE);
    expect((await stat(keysPath)).mode & 0o777).toBe(0o600);
    const keys = JSON.parse(await readFile(keysPath, "utf8"));
    expect(keys.signingKey.kid).toBe(jwks.keys[0].kid);
    expect(first.server.output()).toContain(`keys in ${keysPath}`);

    // Another key under the same kid gets the 401.
    const impostor = await generateKeyPair("ES256");
    const forged = await new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: jwks.keys[0].kid, typ: "JWT" }).sign(impostor.privateKey);
    expect((await fetch(first.base, { headers: { authorization: `Bearer ${forged}` } })).status).toBe(401);

    // The service role is whoever holds the secret key, as apikey or as Bearer; the publishable key is nobody.
    const serviceRun = await runDeno("scripts/token.ts", ["--service"], { ...env, PORT: String(first.port) });
    expect(serviceRun.code).toBe(0);
    const secretKey = serviceRun.stdout.trim();
    expect(secretKey).toBe(keys.secretKey);
    expect(secretKey).toMatch(/^sb_secret_[A-Za-z0-9_-]{43}$/);
    expect((await fetch(`${first.base}/admin/keys`, { headers: { apikey: secretKey } })).status).toBe(200);
    expect((await fetch(`${first.base}/admin/keys`, { headers: { authorization: `Bearer ${secretKey}` } })).status).toBe(200);
    expect((await fetch(`${first.base}/admin/keys`, { headers: { apikey: keys.publishableKey } })).status).toBe(401);
    const wrongKey = secretKey.slice(0, -1) + (secretKey.endsWith("x") ? "y" : "x");
    expect((await fetch(`${first.base}/admin/keys`, { headers: { apikey: wrongKey } })).status).toBe(401);
    expect((await fetch(`${first.base}/admin/keys`, { headers: { apikey: secretKey, authorization: `Bearer ${token}` } })).status).toBe(403);

    expect(await stopProcess(first.server)).toBe(0);
    expect(first.server.output()).toContain("shutting down");

    const second = await startServer(env);
    expect(second.server.output()).toContain("0 applied now");
    const again = await runDeno("scripts/token.ts", ["alice@example.com"], { ...env, PORT: String(second.port) });
    expect(JSON.parse(Buffer.from(again.stdout.trim().split(".")[1], "base64url").toString()).sub).toBe(claims.sub);
    const value = await fetch(`${second.base}/${(await created.json()).data.id}/value`, { headers: { authorization: `Bearer ${again.stdout.trim()}` } });
    expect((await value.json()).data.value).toBe("kept-across-restarts");
    expect(await stopProcess(second.server)).toBe(0);

    // Kept with the data: the same keys after a restart, and with no server running.
    const service = await runDeno("scripts/token.ts", ["--service"], env);
    expect(service.stdout.trim()).toBe(keys.secretKey);
  });

  it("runs the scheduled jobs on a timer where pg_cron is missing: an expired secret switches off by itself", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "sigyl-data-"));
    dirs.push(dataDir);
    const env = { SIGYL_DATA_DIR: dataDir, DATABASE_URL: undefined, SIGYL_JOB_INTERVAL_SECONDS: "1" };
    const { server, base, port } = await startServer(env);
    try {
      expect(server.output()).toContain("scheduled jobs: local timer every 1s");
      const token = (await runDeno("scripts/token.ts", ["timer@example.com"], { ...env, PORT: String(port) })).stdout.trim();
      const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
      const created = await fetch(base, {
        method: "POST", headers,
        body: JSON.stringify({ name: "SHORT_LIVED", value: "short-lived-value", expiresAt: new Date(Date.now() + 2000).toISOString() }),
      });
      const { data } = await created.json();
      const off = await eventually(async () => {
        const meta = await (await fetch(`${base}/${data.id}`, { headers })).json();
        return meta.data.isActive === false ? meta.data : undefined;
      }, 20_000, 500);
      expect(off.status).toBe("expired");
      const audit = await (await fetch(`${base}/${data.id}/audit?action=expired`, { headers })).json();
      expect(audit.data.items).toHaveLength(1);
      expect(audit.data.items[0].actorType).toBe("system");
    } finally {
      expect(await stopProcess(server)).toBe(0);
    }
  });

  it("a busy port gives a one-line error and a non-zero exit", async () => {
    const port = await freePort();
    const blocker = createServer().listen(port, "127.0.0.1");
    const dataDir = await mkdtemp(join(tmpdir(), "sigyl-data-"));
    dirs.push(dataDir);
    try {
      const res = await runDeno("scripts/serve.ts", [], { PORT: String(port), SIGYL_DATA_DIR: dataDir, DATABASE_URL: undefined });
      expect(res.code).toBe(1);
      expect(res.stderr.trim().split("\n")).toEqual([`sigyl: port ${port} on 127.0.0.1 is already in use (set PORT)`]);
    } finally {
      blocker.close();
    }
  });

  it("an unreachable DATABASE_URL gives a one-line error and a non-zero exit", async () => {
    const res = await runDeno("scripts/serve.ts", [], { PORT: String(await freePort()), DATABASE_URL: "postgresql://postgres:pw@127.0.0.1:1/none" });
    expect(res.code).toBe(1);
    const lines = res.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^sigyl: cannot reach DATABASE_URL \(postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/none\)/);
    expect(res.stderr).not.toContain(":pw@");
  });
});

describeOrSkip("npm start on PostgreSQL", needsPostgres, () => {
  it("migrates an empty database and serves health", async () => {
    const admin = createPostgresDatabase(process.env.DATABASE_URL!, { max: 1 });
    const name = `sigyl_start_${Math.random().toString(36).slice(2, 8)}`;
    await admin.query(`create database ${name}`);
    const url = new URL(process.env.DATABASE_URL!);
    url.pathname = `/${name}`;
    try {
      const { server, health } = await startServer({ DATABASE_URL: url.toString() });
      expect(health.data.database).toMatchObject({ kind: "postgres", reachable: true });
      expect(server.output()).toMatch(/migrations: \d+ applied now/);
      expect(await stopProcess(server)).toBe(0);
    } finally {
      await admin.query(`drop database ${name} with (force)`);
      await admin.close();
    }
  });
});
