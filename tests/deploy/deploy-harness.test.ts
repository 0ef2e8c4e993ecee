/**
 * The deploy harness: the function exactly as `supabase functions deploy secrets` uploads it,
 * run on hosted conditions. The real CLI deploys to a loopback mock of the Management API;
 * the uploaded files are unpacked into an empty directory and type-checked there with an
 * empty DENO_DIR; the function then starts with only the variables the hosted runtime sets
 * (no SIGYL_*, no DATABASE_URL) against a database of its own prepared as a hosted project
 * is (the platform stand-in, then `supabase db push`). Callers are who they are on hosted:
 * users with ES256 tokens whose public key is in SUPABASE_JWKS, sending the publishable key
 * as `apikey` as supabase-js does; the platform with an `sb_secret_` key.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { listMigrations } from "../../shared/db/migrate.ts";
import { ensureUser, MIGRATIONS_DIR } from "../../scripts/lib/local.ts";
import {
  checkUpload, createHostedProject, type HostedDatabase, type HostedFunction, type HostedProject, prepareHostedDatabase,
  startHostedFunction, unpackUpload,
} from "../helpers/hosted-function.ts";
import { deployWithCli, fakeProjectRef, type ManagementApiMock, startManagementApiMock, type Upload } from "../helpers/management-api-mock.ts";
import { describeOrSkip, needsPostgres } from "../helpers/skip.ts";

/** The variables the hosted edge runtime sets for every function: the function gets these and nothing else. */
const HOSTED_VARIABLES = [
  "SUPABASE_URL", "SUPABASE_DB_URL", "SUPABASE_JWKS", "SUPABASE_SECRET_KEYS", "SUPABASE_PUBLISHABLE_KEYS",
  "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SB_REGION", "SB_EXECUTION_ID", "DENO_DEPLOYMENT_ID",
].sort();

interface Reply {
  status: number;
  body: any;
  headers: Headers;
}

describeOrSkip("the deployed function on hosted conditions", needsPostgres, () => {
  let mock: ManagementApiMock;
  let database: HostedDatabase | undefined;
  let project: HostedProject;
  let upload: Upload;
  let dir: string | undefined;
  let denoDir: string | undefined;
  let fn: HostedFunction | undefined;
  /** Every value stored through the function, looked for in its output at the end. */
  const values: string[] = [];

  beforeAll(async () => {
    mock = await startManagementApiMock();
    const projectRef = fakeProjectRef();
    const deploy = await deployWithCli(mock, { slug: "secrets", projectRef, useApi: true });
    if (deploy.code !== 0 || mock.uploads.length !== 1) {
      throw new Error(`supabase functions deploy --use-api failed (${deploy.code}):\n${deploy.stdout}${deploy.stderr}`);
    }
    upload = mock.uploads[0];
    dir = await unpackUpload(upload);
    denoDir = await mkdtemp(join(tmpdir(), "sigyl-deno-dir-"));
    project = await createHostedProject({ projectRef, url: mock.url });
    mock.serveKeySet(project.jwks);
    database = await prepareHostedDatabase(process.env.DATABASE_URL!);
  }, 240_000);

  afterAll(async () => {
    await fn?.stop();
    await database?.drop();
    await mock?.close();
    for (const d of [dir, denoDir]) if (d) await rm(d, { recursive: true, force: true });
  });

  /** A request as the runtime forwards it: the function sees paths from `/secrets`. */
  async function call(method: string, path: string, headers: Record<string, string> = {}, body?: unknown): Promise<Reply> {
    if (!fn) throw new Error("the function is not running");
    const res = await fetch(`${fn.base}${path}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch { /* not JSON */ }
    return { status: res.status, body: parsed, headers: res.headers };
  }

  /** Headers supabase-js sends for a signed-in user: the publishable key and the user's token. */
  const asUser = (token: string) => ({ apikey: project.publishableKey, authorization: `Bearer ${token}` });
  /** Headers supabase-js sends when created with a secret key. */
  const asService = (key = project.secretKey) => ({ apikey: key, authorization: `Bearer ${key}` });

  async function signedInUser(label: string) {
    const user = await ensureUser(database!.db, `${label}-${crypto.randomUUID().slice(0, 8)}@deploy.sigyl.dev`);
    return { ...user, token: await project.userToken(user) };
  }

  it("the uploaded file set type-checks on its own, with an empty DENO_DIR and no node_modules", async () => {
    const check = await checkUpload(dir!, denoDir!, upload);
    expect(check.code, check.stderr).toBe(0);
  }, 240_000);

  it("starts with only the hosted variables and answers /secrets/health", async () => {
    const env = project.env(database!.url);
    expect(Object.keys(env).sort()).toEqual(HOSTED_VARIABLES);
    fn = await startHostedFunction(dir!, denoDir!, upload, env);
    const health = await call("GET", "/health");
    expect(health.status, fn.output()).toBe(200);
    expect(health.body.data.database).toMatchObject({ kind: "postgres", reachable: true, migrations: (await listMigrations(MIGRATIONS_DIR)).length });
    expect(health.body.data.keyring.activeKekVersion).toBeGreaterThanOrEqual(1);
  }, 120_000);

  it("serves the OpenAPI document from the upload alone (its generator is imported on the first request)", async () => {
    const doc = await call("GET", "/openapi.json");
    expect(doc.status, fn.output()).toBe(200);
    expect(doc.body.openapi).toBe("3.1.0");
    expect(Object.keys(doc.body.paths)).toContain("/secrets/{id}/value");
  }, 60_000);

  it("a user with an ES256 token from the project's key set creates a secret and reads its value", async () => {
    const owner = await signedInUser("owner");
    const value = `sk-deploy-${crypto.randomUUID()}`;
    values.push(value);
    const created = await call("POST", "", asUser(owner.token), { name: "OPENAI_API_KEY", value, secretType: "api_key" });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(JSON.stringify(created.body)).not.toContain(value);
    const read = await call("GET", `/${created.body.data.id}/value`, asUser(owner.token));
    expect(read.status).toBe(200);
    expect(read.headers.get("cache-control")).toBe("no-store");
    expect(read.body.data).toMatchObject({ version: 1, value });
    const list = await call("GET", "", asUser(owner.token));
    expect(list.body.data.items.map((s: { id: string }) => s.id)).toEqual([created.body.data.id]);
  });

  it("the platform, with an sb_secret_ key, issues a deployment token that opens the deployment's env", async () => {
    const owner = await signedInUser("deployer");
    const value = `postgres://deploy-${crypto.randomUUID()}`;
    values.push(value);
    const secret = await call("POST", "", asUser(owner.token), { name: "DB_URL", value, secretType: "database_url" });
    expect(secret.status).toBe(201);
    // The platform writes the deployment row, as it does on a hosted project.
    const [row] = await database!.db.query<{ id: string }>(
      `insert into public.deployments (user_id, name, required_env) values ($1::uuid, 'mcp-deploy', array['DB_URL']) returning id`,
      [owner.id],
    );
    const bound = await call("PUT", `/deployments/${row.id}/secrets`, asUser(owner.token), { bindings: [{ envName: "DB_URL", secretId: secret.body.data.id }] });
    expect(bound.status, JSON.stringify(bound.body)).toBe(200);
    expect(bound.body.data.valid).toBe(true);
    await database!.db.query(`update public.deployments set status = 'deploying' where id = $1::uuid`, [row.id]);

    const issued = await call("POST", `/deployments/${row.id}/tokens`, asService(), { ttlSeconds: 300 });
    expect(issued.status, JSON.stringify(issued.body)).toBe(201);
    values.push(issued.body.data.token);
    const env = await call("GET", `/deployments/${row.id}/env`, { authorization: `Bearer ${issued.body.data.token}` });
    expect(env.status).toBe(200);
    expect(env.body.data).toEqual({ DB_URL: value });

    // The key alone as apikey, or alone as a bearer token, is the service role too.
    expect((await call("GET", "/admin/keys", { apikey: project.secretKey })).status).toBe(200);
    expect((await call("GET", "/admin/keys", { authorization: `Bearer ${project.secretKey}` })).status).toBe(200);
    expect((await call("GET", "/admin/keys", asUser(owner.token))).status).toBe(403);
  });

  it("a token signed by a key the project does not hold, and keys that are not secret keys, get 401", async () => {
    const user = await signedInUser("stranger");
    for (const token of [await project.foreignUserToken(user), await project.foreignUserToken(user, { sameKid: true })]) {
      const res = await call("GET", "", asUser(token));
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe("unauthenticated");
    }
    // The legacy anon key is a JWT signed with the legacy secret, which functions never get.
    expect((await call("GET", "", asUser(project.anonKey))).status).toBe(401);
    expect((await call("GET", "/admin/keys", { apikey: project.publishableKey })).status).toBe(401);
    expect((await call("GET", "/admin/keys", asService(`sb_secret_${"x".repeat(32)}`))).status).toBe(401);
  });

  it("logged no value, token or key", () => {
    const output = fn?.output() ?? "";
    for (const secret of [...values, project.secretKey]) expect(output).not.toContain(secret);
  });

  it("the CLI made one source upload, with the access token, and no other write", () => {
    expect(mock.requests.every((r) => r.authorized || r.path === "/auth/v1/.well-known/jwks.json")).toBe(true);
    const posts = mock.requests.filter((r) => r.method === "POST");
    expect(posts.map((r) => r.path)).toEqual([`/v1/projects/${project.projectRef}/functions/deploy?slug=secrets`]);
  });
});
