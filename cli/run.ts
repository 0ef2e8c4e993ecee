/**
 * `sigyl run`: the deployment's env fetched into memory and handed to one child process, never
 * to this process's own environment, a file, a command line or an output stream. The child
 * runs without a shell; SIGINT, SIGTERM and SIGHUP are passed on to it, and its exit code is
 * the CLI's (128 + n when a signal ended it). With `watch`, the env is polled with
 * `If-None-Match`: a changed env stops the child (SIGTERM, SIGKILL after the grace period) and
 * starts it again with the new one.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { constants } from "node:os";
import { apiError, SigylApiError, type SigylClient } from "../shared/client/client.ts";
import { CliError } from "./errors.ts";

export type Env = Record<string, string>;

/** A fetched env and its version tag, or `null` when the tag sent is still current (304). */
export type EnvFetch = (etag?: string) => Promise<{ env: Env; etag: string } | null>;

/** GET /secrets/deployments/{id}/env as JSON, conditional on `etag` when one is given. */
export function envFetcher(api: SigylClient, deploymentId: string): EnvFetch {
  return async (etag) => {
    const { data, error, response } = await api.GET("/secrets/deployments/{id}/env", {
      params: { path: { id: deploymentId }, query: { format: "json" }, header: etag ? { "If-None-Match": etag } : undefined },
    });
    if (response.status === 304) return null;
    if (!response.ok || !data) throw apiError(response, error);
    const env = (data as { data: Env }).data;
    // A server without ETags: the env's own digest tells a change apart (it is never shown).
    const tag = response.headers.get("ETag") ?? `"sha256:${createHash("sha256").update(JSON.stringify(env)).digest("hex")}"`;
    return { env, etag: tag };
  };
}

/** Credentials of this CLI that the command has no use for. */
const WITHHELD = ["SIGYL_DEPLOYMENT_TOKEN", "SIGYL_TOKEN"];

/** The child's environment: this process's, minus the CLI's credentials, plus the deployment's env. */
export function childEnvironment(parent: NodeJS.ProcessEnv, env: Env): NodeJS.ProcessEnv {
  const merged: NodeJS.ProcessEnv = { ...parent };
  for (const name of WITHHELD) delete merged[name];
  return Object.assign(merged, env);
}

export interface RunOptions {
  command: string;
  args: string[];
  fetchEnv: EnvFetch;
  /** Poll every `intervalMs`; on a change, stop the child (SIGKILL after `graceMs`) and start it again. */
  watch?: { intervalMs: number; graceMs: number };
  /** One line for the person watching (stderr). Never given a value. */
  log: (line: string) => void;
  parentEnv?: NodeJS.ProcessEnv;
}

const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

const exitCodeOf = (code: number | null, signal: NodeJS.Signals | null) =>
  code ?? 128 + (signal ? constants.signals[signal] ?? 0 : 0);

/** Runs the command with the env; resolves to the exit code the CLI should exit with. */
export async function runWithEnv(options: RunOptions): Promise<number> {
  const { command, args, fetchEnv, watch, log } = options;
  const parentEnv = options.parentEnv ?? process.env;
  const first = await fetchEnv();
  if (!first) throw new CliError("the server answered 304 to a request without If-None-Match", "unexpected_response", 7);
  let etag = first.etag;

  return await new Promise<number>((resolve, reject) => {
    let child: ChildProcess;
    /** A signal received: the CLI ends with the child, and starts no other. */
    let ending = false;
    /** The env that replaces the running child's, once it has stopped. */
    let pending: Env | null = null;
    let killTimer: NodeJS.Timeout | undefined;
    let pollTimer: NodeJS.Timeout | undefined;
    let lastWatchError = "";
    /** The CLI's outcome is decided: no restart, no timer. */
    let settled = false;

    const start = (env: Env) => {
      child = spawn(command, args, { env: childEnvironment(parentEnv, env), stdio: "inherit", shell: false });
      child.once("error", (err: NodeJS.ErrnoException) => {
        if (child.pid !== undefined) return; // an error after the start (a failed kill): exit decides
        cleanup();
        const code = err.code === "ENOENT" ? 127 : 126;
        reject(new CliError(`cannot run ${command}: ${err.code ?? err.message}`, "command_failed", code));
      });
      child.once("exit", (code, signal) => {
        clearTimeout(killTimer);
        if (pending && !ending) {
          const env = pending;
          pending = null;
          start(env);
          schedulePoll();
          return;
        }
        cleanup();
        resolve(exitCodeOf(code, signal));
      });
    };

    const onSignal = (signal: NodeJS.Signals) => {
      ending = true;
      clearTimeout(pollTimer);
      // Between a restart's stop and start there is no child to tell: the start never comes.
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    };
    const handlers = FORWARDED.map((signal) => {
      const handler = () => onSignal(signal);
      process.on(signal, handler);
      return [signal, handler] as const;
    });
    const cleanup = () => {
      settled = true;
      clearTimeout(pollTimer);
      clearTimeout(killTimer);
      for (const [signal, handler] of handlers) process.off(signal, handler);
    };

    const poll = async () => {
      if (ending || pending) return;
      try {
        const next = await fetchEnv(etag);
        if (lastWatchError) log("sigyl: watching the env again");
        lastWatchError = "";
        if (settled) return;
        if (next && next.etag !== etag && !ending) {
          etag = next.etag;
          pending = next.env;
          log(`sigyl: the deployment's env changed; restarting ${command}`);
          child.kill("SIGTERM");
          killTimer = setTimeout(() => child.kill("SIGKILL"), watch!.graceMs);
          return;
        }
      } catch (err) {
        if (settled) return;
        const message = err instanceof SigylApiError ? `${err.message} (${err.code})` : err instanceof Error ? err.message : String(err);
        if (message !== lastWatchError) log(`sigyl: watching the env failed (${message}); ${command} keeps running`);
        lastWatchError = message;
      }
      schedulePoll();
    };
    const schedulePoll = () => {
      if (watch && !ending) pollTimer = setTimeout(() => void poll(), watch.intervalMs);
    };

    start(first.env);
    schedulePoll();
  });
}
