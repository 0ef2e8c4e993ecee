/**
 * A loopback stand-in for Supabase's Management API, just enough for the real CLI's
 * `supabase functions deploy`, so a test can see exactly what a deploy uploads.
 *
 * The CLI is pointed at it the way the CLI allows: `--profile <file>`, where the file (YAML)
 * names the API URL, dashboard URL and project host the CLI would otherwise take from its
 * built-in `supabase` profile. Without Docker (or with `--use-api`) the CLI uploads the
 * function's source: `POST /v1/projects/{ref}/functions/deploy?slug=…`, multipart, one `file`
 * part per source file (named by its path relative to the project) and a `metadata` part
 * (entrypoint and import map paths, verify_jwt). The mock keeps those parts and records every
 * request; anything it does not know answers 404, so a test sees any call it did not expect.
 * It also plays the project's one public auth endpoint a function may call, the key set at
 * `/auth/v1/.well-known/jwks.json`, once given one, so its URL can stand as SUPABASE_URL.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../../scripts/lib/local.ts";

/** The `metadata` part of a source upload, as the CLI writes it. */
export interface DeployMetadata {
  name?: string;
  entrypoint_path: string;
  import_map_path?: string;
  static_patterns?: string[];
  verify_jwt?: boolean;
}

/** One function as the CLI uploaded it. */
export interface Upload {
  projectRef: string;
  slug: string;
  metadata: DeployMetadata;
  /** Path relative to the project (as the CLI names it) → content. */
  files: Map<string, Uint8Array>;
}

export interface RecordedRequest {
  method: string;
  path: string;
  /** Whether it carried the mock's access token. */
  authorized: boolean;
}

export interface ManagementApiMock {
  /** `http://127.0.0.1:<port>`, the profile's `api_url`. */
  url: string;
  /** A token of the form the CLI accepts (`sbp_` + 40 hex), the only one the mock takes. */
  accessToken: string;
  uploads: Upload[];
  requests: RecordedRequest[];
  /** Serves `keySet` at `/auth/v1/.well-known/jwks.json`, as a project does. */
  serveKeySet(keySet: unknown): void;
  close(): Promise<void>;
}

/** A project ref as Supabase makes them: 20 lowercase letters. */
export function fakeProjectRef(): string {
  return Array.from(randomBytes(20), (b) => String.fromCharCode(97 + (b % 26))).join("");
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
};

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Splits a source upload into its metadata and files (undici's multipart parser). */
async function parseUpload(body: Buffer, contentType: string, projectRef: string, slug: string): Promise<Upload> {
  const form = await new Response(new Uint8Array(body), { headers: { "content-type": contentType } }).formData();
  const metadata = form.get("metadata");
  if (typeof metadata !== "string") throw new Error("no metadata part");
  const files = new Map<string, Uint8Array>();
  for (const part of form.getAll("file")) {
    if (typeof part === "string") throw new Error("a file part without a file name");
    if (files.has(part.name)) throw new Error(`${part.name} uploaded twice`);
    files.set(part.name, new Uint8Array(await part.arrayBuffer()));
  }
  return { projectRef, slug, metadata: JSON.parse(metadata), files };
}

export async function startManagementApiMock(): Promise<ManagementApiMock> {
  const accessToken = `sbp_${randomBytes(20).toString("hex")}`;
  const uploads: Upload[] = [];
  const requests: RecordedRequest[] = [];
  let keySet: unknown = null;

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://mock");
    const authorized = req.headers.authorization === `Bearer ${accessToken}`;
    requests.push({ method: req.method ?? "", path: url.pathname + url.search, authorized });
    const body = await readBody(req);
    if (req.method === "GET" && url.pathname === "/auth/v1/.well-known/jwks.json" && keySet) return json(res, 200, keySet);
    if (!authorized) return json(res, 401, { message: "Unauthorized" });

    const deploy = url.pathname.match(/^\/v1\/projects\/([a-z]{20})\/functions\/deploy$/);
    if (req.method === "POST" && deploy) {
      const slug = url.searchParams.get("slug") ?? "";
      let upload: Upload;
      try {
        upload = await parseUpload(body, req.headers["content-type"] ?? "", deploy[1], slug);
      } catch (err) {
        return json(res, 400, { message: `bad upload: ${(err as Error).message}` });
      }
      uploads.push(upload);
      const now = Date.now();
      return json(res, 201, {
        id: crypto.randomUUID(), slug, name: upload.metadata.name ?? slug, version: uploads.length, status: "ACTIVE",
        entrypoint_path: upload.metadata.entrypoint_path, import_map_path: upload.metadata.import_map_path,
        verify_jwt: upload.metadata.verify_jwt ?? true, created_at: now, updated_at: now,
      });
    }
    return json(res, 404, { message: `the mock does not serve ${req.method} ${url.pathname}` });
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    accessToken,
    uploads,
    requests,
    serveKeySet: (k) => {
      keySet = k;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `supabase functions deploy <slug> --project-ref <ref> [--use-api] --profile <file>` with the
 * project's own CLI, from the project root, against `mock`. The CLI gets a home of its own (no
 * login, telemetry state or profile of the machine's user) and the mock's token through
 * `SUPABASE_ACCESS_TOKEN`. `useApi: false` is the plain command: with no Docker daemon (made
 * certain through DOCKER_HOST) the CLI warns and uploads the same way.
 */
export async function deployWithCli(
  mock: ManagementApiMock,
  options: { slug: string; projectRef: string; useApi: boolean },
): Promise<CliRun> {
  const home = await mkdtemp(join(tmpdir(), "sigyl-cli-home-"));
  try {
    const profile = join(home, "management-api-mock.yaml");
    await writeFile(profile, [
      "name: management-api-mock",
      `api_url: ${mock.url}`,
      `dashboard_url: ${mock.url}/dashboard`,
      "project_host: supabase.invalid",
      "",
    ].join("\n"));
    // Nothing from the caller's environment may redirect the CLI (SUPABASE_PROFILE, a token…).
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("SUPABASE_") && k !== "DOCKER_HOST"));
    const args = ["functions", "deploy", options.slug, "--project-ref", options.projectRef, "--profile", profile];
    if (options.useApi) args.push("--use-api");
    const child = spawn(join(ROOT, "node_modules", ".bin", "supabase"), args, {
      cwd: ROOT,
      env: {
        ...env,
        HOME: home,
        SUPABASE_ACCESS_TOKEN: mock.accessToken,
        DO_NOT_TRACK: "1",
        SUPABASE_TELEMETRY_DISABLED: "1",
        ...(options.useApi ? {} : { DOCKER_HOST: `unix://${join(home, "no-docker.sock")}` }),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    // A CLI that hangs (waiting on a network it cannot reach) is stopped, not waited for.
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    clearTimeout(timer);
    return { code, stdout, stderr };
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}
