/**
 * What `supabase functions deploy secrets` uploads, measured. The project's own Supabase CLI
 * deploys to a loopback mock of the Management API; the file set it uploads must be exactly
 * the function's module graph and its import map, resolve its `npm:` imports with no
 * node_modules, and stay within the 10 MB Supabase allows a function as `deno info` counts
 * it (a whole npm package counts, whatever is imported from it). Prints `deno info`'s total
 * and the size of the set bundled into one file.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/lib/local.ts";
import { bundledSizes, moduleGraph, unpackUpload } from "../helpers/hosted-function.ts";
import { deployWithCli, fakeProjectRef, type ManagementApiMock, startManagementApiMock, type Upload } from "../helpers/management-api-mock.ts";

/** `deno info` prints sizes in binary units; its "10MB" is this many bytes. */
const LIMIT_BYTES = 10 * 1024 * 1024;
const ENTRY = "functions/secrets/index.ts";
const IMPORT_MAP = "functions/secrets/deno.json";

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(2)} MB`;
const kb = (n: number) => `${(n / 1024).toFixed(0)} KB`;
const say = (line: string) => console.log(`[sigyl deploy] ${line}`);

/** The package an import map entry points at: `npm:/hono@4.13.19/` → ["hono", "4.13.19"]. */
function npmTarget(spec: string): [string, string] | null {
  const m = spec.match(/^npm:\/?((?:@[^/]+\/)?[^@/]+)@([^/]+)/);
  return m ? [m[1], m[2]] : null;
}

describe("the function's import map", () => {
  it("is the function's own: npm: specifiers at package.json's versions, no node_modules, nothing local-only", async () => {
    const map = JSON.parse(await readFile(join(ROOT, IMPORT_MAP), "utf8"));
    const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8"));
    expect(map.nodeModulesDir).toBeUndefined();
    expect(Object.keys(map)).not.toContain("tasks");
    for (const [name, spec] of Object.entries<string>(map.imports)) {
      const target = npmTarget(spec);
      expect(target, `${name} → ${spec}`).not.toBeNull();
      expect(pkg.dependencies[target![0]], `${name} → ${spec}`).toBe(target![1]);
    }
    expect(Object.keys(map.imports)).not.toContain("@electric-sql/pglite");
  });
});

describe("what the Supabase CLI uploads", () => {
  let mock: ManagementApiMock;
  let upload: Upload;
  let dir: string | undefined;
  let denoDir: string | undefined;

  beforeAll(async () => {
    mock = await startManagementApiMock();
    const deploy = await deployWithCli(mock, { slug: "secrets", projectRef: fakeProjectRef(), useApi: true });
    if (deploy.code !== 0 || mock.uploads.length !== 1) {
      throw new Error(`supabase functions deploy --use-api failed (${deploy.code}):\n${deploy.stdout}${deploy.stderr}`);
    }
    upload = mock.uploads[0];
    dir = await unpackUpload(upload);
    denoDir = await mkdtemp(join(tmpdir(), "sigyl-deno-dir-"));
  }, 180_000);

  afterAll(async () => {
    await mock?.close();
    for (const d of [dir, denoDir]) if (d) await rm(d, { recursive: true, force: true });
  });

  it("is the entry, its import map and the shared code it imports: no node_modules, package.json, PGlite or scripts", () => {
    expect(upload.metadata).toMatchObject({ name: "secrets", entrypoint_path: ENTRY, import_map_path: IMPORT_MAP, verify_jwt: false });
    const paths = [...upload.files.keys()].sort();
    say(`uploaded ${paths.length} files, ${kb([...upload.files.values()].reduce((n, b) => n + b.length, 0))}`);
    expect(paths).toContain(ENTRY);
    expect(paths).toContain(IMPORT_MAP);
    const unexpected = paths.filter((p) => p !== ENTRY && p !== IMPORT_MAP && !/^shared\/[\w/-]+\.ts$/.test(p));
    expect(unexpected).toEqual([]);
    expect(paths).not.toContain("shared/db/pglite.ts");
    expect(paths).not.toContain("shared/db/migrate.ts");
  });

  it("is the same with the plain command, which uploads source the same way when Docker is absent", async () => {
    const plain = await deployWithCli(mock, { slug: "secrets", projectRef: fakeProjectRef(), useApi: false });
    expect(plain.code, plain.stdout + plain.stderr).toBe(0);
    const again = mock.uploads.at(-1)!;
    expect(mock.uploads).toHaveLength(2);
    expect(again.metadata).toEqual(upload.metadata);
    expect([...again.files.keys()].sort()).toEqual([...upload.files.keys()].sort());
    expect(mock.requests.filter((r) => r.method === "POST").map((r) => r.path.replace(/[a-z]{20}/, "<ref>"))).toEqual([
      "/v1/projects/<ref>/functions/deploy?slug=secrets", "/v1/projects/<ref>/functions/deploy?slug=secrets",
    ]);
  }, 180_000);

  it("is exactly the module graph, whose npm imports resolve from the registry; deno info stays within 10 MB", async () => {
    const graph = await moduleGraph(dir!, denoDir!, upload);
    const local = graph.localFiles.reduce((n, f) => n + f.bytes, 0);
    say(`deno info: ${graph.reported} (${graph.totalBytes.toLocaleString("en")} bytes; limit ${mb(LIMIT_BYTES)}): ` +
      `${graph.localFiles.length} local modules ${kb(local)}, ` +
      graph.npmPackages.map((p) => `${p.name}@${p.version} ${p.bytes >= 1024 * 1024 ? mb(p.bytes) : kb(p.bytes)}`).join(", "));

    const uploadedCode = [...upload.files.keys()].filter((p) => p !== IMPORT_MAP).sort();
    expect(graph.localFiles.map((f) => f.path).sort()).toEqual(uploadedCode);

    // Every package the import map names is one the function runs; the only others fetched are
    // node-postgres's own dependencies and @hono/zod-openapi's (its registry and generator).
    const map = JSON.parse(new TextDecoder().decode(upload.files.get(IMPORT_MAP)));
    const mapped = [...new Set(Object.values<string>(map.imports).map((s) => npmTarget(s)![0]))].sort();
    const fetched = graph.npmPackages.map((p) => p.name);
    expect(fetched).toEqual(expect.arrayContaining(mapped));
    expect(fetched.filter((n) => !mapped.includes(n)).sort()).toEqual([
      "@asteasolutions/zod-to-openapi", "openapi3-ts",
      "pg-cloudflare", "pg-connection-string", "pg-int8", "pg-pool", "pg-protocol", "pg-types", "pgpass",
      "postgres-array", "postgres-bytea", "postgres-date", "postgres-interval", "split2", "xtend", "yaml",
    ]);

    expect(graph.totalBytes).toBeLessThanOrEqual(LIMIT_BYTES);
  }, 180_000);

  it("bundles into one file (deno bundle); prints its size", async () => {
    const { bytes, minifiedBytes } = await bundledSizes(dir!, denoDir!, upload);
    say(`deno bundle of the uploaded set: ${kb(bytes)} (${bytes.toLocaleString("en")} bytes), minified ${kb(minifiedBytes)}`);
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThanOrEqual(LIMIT_BYTES);
  }, 180_000);
});
