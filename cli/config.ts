/**
 * Where the CLI finds the API and its credential, and the user-only file `sigyl login` keeps
 * them in. Precedence: a flag, then the environment (SIGYL_URL, SIGYL_TOKEN), then the file,
 * then the local server's default URL.
 */
import { chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { z } from "zod";
import { CliError, EXIT } from "./errors.ts";

export const DEFAULT_URL = "http://127.0.0.1:54321/functions/v1";

/** What `sigyl login` stores. A session (email and password sign-in) also keeps its refresh token. */
const StoredSchema = z.object({
  url: z.string().optional(),
  token: z.string().optional(),
  refreshToken: z.string().optional(),
  /** Unix seconds when `token` expires, for a session: refreshed shortly before. */
  expiresAt: z.number().optional(),
  /** The project's publishable key, which Supabase Auth's gateway asks for on sign-in and refresh. */
  apikey: z.string().optional(),
  email: z.string().optional(),
});
export type StoredConfig = z.infer<typeof StoredSchema>;

/** `SIGYL_CONFIG`, else `$XDG_CONFIG_HOME/sigyl/config.json`, else `~/.config/sigyl/config.json`. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SIGYL_CONFIG) return env.SIGYL_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
  return join(base, "sigyl", "config.json");
}

export async function readStoredConfig(path: string): Promise<StoredConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return {};
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch { /* reported below */ }
  const stored = StoredSchema.safeParse(parsed);
  if (!stored.success) {
    throw new CliError(`${path} is not a sigyl config file; remove it and run sigyl login again`, "config_invalid", EXIT.usage);
  }
  return stored.data;
}

/**
 * Written whole to a file only its owner may read (0600), in a directory only its owner may
 * enter (0700), then renamed into place: no reader ever sees half a file or a wider mode.
 */
export async function writeStoredConfig(path: string, config: StoredConfig): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (!process.env.SIGYL_CONFIG) await chmod(dir, 0o700);
  const pending = `${path}.${process.pid}.${Date.now()}.tmp`;
  try {
    await writeFile(pending, JSON.stringify(config, null, 2) + "\n", { mode: 0o600, flag: "wx" });
    await chmod(pending, 0o600);
    await rename(pending, path);
  } finally {
    await rm(pending, { force: true });
  }
}

export async function removeStoredConfig(path: string): Promise<boolean> {
  try {
    await rm(path);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return false;
    throw err;
  }
}

/** The functions base URL without a trailing slash; refuses what is not http(s). */
export function normaliseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`not a URL: ${url}`, "usage", EXIT.usage);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new CliError(`the API URL must be http or https: ${url}`, "usage", EXIT.usage);
  }
  return url.replace(/\/+$/, "");
}

/** The project's base (`https://<ref>.supabase.co`) of a functions URL, where `/auth/v1` lives. */
export function projectUrlOf(functionsUrl: string): string {
  return functionsUrl.replace(/\/functions\/v1$/, "");
}
