/**
 * `sigyl run` and `sigyl env` as a container builder uses them: a deployment token in
 * SIGYL_DEPLOYMENT_TOKEN, the env fetched into memory and handed to the command only. The
 * values (newlines, quotes, `$`, unicode, `=`, backslashes) arrive byte for byte, while the
 * CLI's own environment and command line, the disk (HOME, config, working directory) and the
 * CLI's output never hold them; exit codes and signals pass through; `--watch` restarts the
 * command when a bound secret gets a new version, and its polls read and audit nothing.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseDotenv } from "dotenv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliServer, encodings, filesContaining, PROBE, sigyl, spawnCli, startCliServer, waitFor } from "./cli-harness.ts";

const run = Math.random().toString(36).slice(2, 8);
/** Env name → value; each value unique to this run, so a scan can only find it where it leaked. */
const VALUES: Record<string, string> = {
  MULTILINE: `first line ${run}\nsecond line\r\nthird\n`,
  QUOTES: `it's "double" and 'single' and \`back\` ${run}`,
  DOLLAR: `$HOME $(id) \${PATH} \`id\` $$ ${run}`,
  UNICODE: `héllo wörld 🔑 日本語 ${run} \u00a0`,
  EQUALS: `a=b==c= ${run}=`,
  BACKSLASH: `C:\\path\\to\\ \\n \\\\ ${run}\\`,
  SPACES: `  leading and trailing ${run}  `,
};
const NAMES = Object.keys(VALUES);
/** The first value of the secret bound to the watched deployment (a secret of its own). */
const WATCHED_FIRST = `watched "v1" ${run}`;
const sha256 = (v: string) => createHash("sha256").update(v, "utf8").digest("hex");

let server: CliServer;
/** A HOME with no config, as on a build host: only SIGYL_DEPLOYMENT_TOKEN authenticates. */
let builderHome: string;
let deploymentToken: string;
let watchedToken: string;
const secretName = (env: string) => `CLI_${env}_${run}`;

/** The probe's report from a run's stdout (one line per start). */
const probes = (stdout: string) =>
  stdout.split("\n").filter((l) => l.startsWith("probe {")).map((l) => JSON.parse(l.slice("probe ".length)));

/** Every place a value must never be: the CLI's output, the temp HOMEs and working directory. */
async function expectNowhere(output: string) {
  for (const value of Object.values(VALUES)) {
    for (const form of encodings(value)) expect(output.includes(form.toString())).toBe(false);
  }
  for (const dir of [server.home, builderHome, server.cwd]) expect(await filesContaining(dir, Object.values(VALUES))).toEqual([]);
}

const asAlice = (args: string[], input?: string) => sigyl(server, args, { input });

beforeAll(async () => {
  server = await startCliServer({
    users: ["alice"],
    deployments: { mcp: { owner: "alice" }, watched: { owner: "alice" }, pending: { owner: "alice", status: "pending" } },
  });
  builderHome = await mkdtemp(join(tmpdir(), "sigyl-cli-builder-"));
  const login = await asAlice(["login"], server.users.alice.token);
  expect(login.code, login.stderr).toBe(0);
  for (const [env, value] of Object.entries(VALUES)) {
    const set = await asAlice(["secrets", "set", secretName(env), "--keep-trailing-newline"], value);
    expect(set.code, set.stderr).toBe(0);
  }
  const bind = await asAlice(["deployments", "bind", server.deployments.mcp, ...NAMES.map((n) => `${n}=${secretName(n)}`)]);
  expect(bind.code, bind.stderr).toBe(0);
  const watched = await asAlice(["secrets", "set", secretName("WATCHED")], WATCHED_FIRST);
  expect(watched.code, watched.stderr).toBe(0);
  const bindWatched = await asAlice(["deployments", "bind", server.deployments.watched, `WATCHED=${secretName("WATCHED")}`]);
  expect(bindWatched.code, bindWatched.stderr).toBe(0);
  const token = await asAlice(["deployments", "token", server.deployments.mcp, "--ttl", "600"]);
  expect(token.code, token.stderr).toBe(0);
  deploymentToken = token.stdout.trim();
  expect(deploymentToken).toMatch(/^sgd_/);
  watchedToken = (await asAlice(["deployments", "token", server.deployments.watched])).stdout.trim();
});

afterAll(async () => {
  await server?.close();
  if (builderHome) await rm(builderHome, { recursive: true, force: true });
});

/** The CLI as the container builder runs it. */
const asBuilder = (args: string[], env: Record<string, string | undefined> = {}, token = deploymentToken) =>
  spawnCli(server, args, { home: builderHome, env: { SIGYL_DEPLOYMENT_TOKEN: token, ...env } });

describe("sigyl run", () => {
  it("gives the command every value byte for byte, and neither the CLI's environment, its output nor the disk holds one", async () => {
    const cli = asBuilder(["run", "--deployment", server.deployments.mcp, "--", process.execPath, PROBE, ...NAMES], {
      PROBE_INHERITED: "kept",
    });
    const done = await cli.done;
    expect(done.code, done.stderr).toBe(0);
    const [report] = probes(done.stdout);
    expect(report.digests).toEqual(Object.fromEntries(NAMES.map((n) => [n, sha256(VALUES[n])])));
    // The CLI itself is the command's parent, and holds no value in its environment or command line.
    expect(report.ppid).toBe(cli.child.pid);
    expect(report.inParent).toEqual([]);
    // The rest of the environment is passed on; the CLI's credentials are not.
    expect(report.inherited).toBe("kept");
    expect(report.credentials).toEqual([]);
    await expectNowhere(done.stdout + done.stderr);
  });

  it("exits with the command's exit code", async () => {
    for (const code of [3, 0, 1, 77]) {
      const done = await asBuilder(["run", "--deployment", server.deployments.mcp, "--", process.execPath, PROBE], {
        PROBE_EXIT: String(code),
      }).done;
      expect(done.code, done.stderr).toBe(code);
      expect(probes(done.stdout)).toHaveLength(1);
    }
  });

  it("forwards SIGTERM, SIGINT and SIGHUP to the command and exits as it does (128 + n when the signal ends it)", async () => {
    const cases = [
      { signal: "SIGTERM", env: { PROBE_EXIT: "42" }, code: 42 },
      { signal: "SIGINT", env: { PROBE_DIE_BY_SIGNAL: "1" }, code: 130 },
      { signal: "SIGHUP", env: { PROBE_DIE_BY_SIGNAL: "1" }, code: 129 },
      { signal: "SIGTERM", env: { PROBE_DIE_BY_SIGNAL: "1" }, code: 143 },
    ] as const;
    for (const c of cases) {
      const cli = asBuilder(["run", "--deployment", server.deployments.mcp, "--", process.execPath, PROBE], {
        PROBE_MODE: "wait", ...c.env,
      });
      await waitFor(cli.stdout, (t) => t.includes("probe {"), 30_000, "the command to start");
      cli.child.kill(c.signal);
      const done = await cli.done;
      expect(done.stdout).toContain(`probe got ${c.signal}`);
      expect(done.code, `${c.signal}: ${done.stderr}`).toBe(c.code);
    }
  });

  it("starts nothing when the env cannot be had, and says why in one line with the documented exit code", async () => {
    const probeArgs = ["--", process.execPath, PROBE];
    // No credential at all.
    const none = await asBuilder(["run", "--deployment", server.deployments.mcp, ...probeArgs], {}, "").done;
    expect(none.code).toBe(3);
    expect(none.stderr).toMatch(/^sigyl: not signed in.*\(unauthenticated\)\n$/);
    // A token that is not one, and another deployment's token.
    const forged = await asBuilder(["run", "--deployment", server.deployments.mcp, ...probeArgs], {}, `sgd_${"x".repeat(43)}`).done;
    expect(forged.code).toBe(3);
    expect(forged.stderr).toMatch(/^sigyl: .+ \(unauthenticated\)\n$/);
    const other = await asBuilder(["run", "--deployment", server.deployments.mcp, ...probeArgs], {}, watchedToken).done;
    expect(other.code).toBe(4);
    expect(other.stderr).toMatch(/\(deployment_not_found\)\n$/);
    // A deployment that is not deploying or running.
    const pendingToken = (await asAlice(["deployments", "token", server.deployments.pending])).stdout.trim();
    const pending = await asBuilder(["run", "--deployment", server.deployments.pending, ...probeArgs], {}, pendingToken).done;
    expect(pending.code).toBe(5);
    expect(pending.stderr).toMatch(/\(deployment_not_ready\)\n$/);
    // A command that does not exist.
    const missing = await asBuilder(["run", "--deployment", server.deployments.mcp, "--", `no-such-command-${run}`]).done;
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/^sigyl: cannot run no-such-command-.+ \(command_failed\)\n$/);
    for (const r of [none, forged, other, pending, missing]) expect(probes(r.stdout)).toEqual([]);
    // The server could not be reached.
    const unreachable = await spawnCli(server, ["run", "--deployment", server.deployments.mcp, ...probeArgs], {
      home: builderHome, url: "http://127.0.0.1:9/functions/v1", env: { SIGYL_DEPLOYMENT_TOKEN: deploymentToken },
    }).done;
    expect(unreachable.code).toBe(7);
    expect(unreachable.stderr).toMatch(/^sigyl: cannot reach the API at http:\/\/127\.0\.0\.1:9\/functions\/v1: .+ \(unreachable\)\n$/);
  });

  it("--watch restarts the command with the new env after a new version of a bound secret, and polls without reading", async () => {
    const cli = asBuilder(
      ["run", "--deployment", server.deployments.watched, "--watch", "--interval", "0.3", "--grace", "5", "--",
        process.execPath, PROBE, "WATCHED"],
      { PROBE_MODE: "wait", PROBE_EXIT: "0" },
      watchedToken,
    );
    await waitFor(cli.stdout, (t) => probes(t).length === 1, 30_000, "the first start");
    expect(probes(cli.stdout())[0].digests.WATCHED).toBe(sha256(WATCHED_FIRST));
    // Several polls while nothing changes: no restart.
    await new Promise((r) => setTimeout(r, 1500));
    expect(probes(cli.stdout())).toHaveLength(1);

    const next = `rotated ${run} "v2" $X \\`;
    const set = await asAlice(["secrets", "set", secretName("WATCHED")], next);
    expect(set.code, set.stderr).toBe(0);
    await waitFor(cli.stdout, (t) => probes(t).length === 2, 30_000, "the restart");
    const [first, second] = probes(cli.stdout());
    expect(cli.stdout()).toContain("probe got SIGTERM");
    expect(second.digests.WATCHED).toBe(sha256(next));
    expect(second.pid).not.toBe(first.pid);
    expect(second.ppid).toBe(cli.child.pid);
    expect(cli.stderr()).toContain("the deployment's env changed; restarting");

    await new Promise((r) => setTimeout(r, 1000));
    expect(probes(cli.stdout())).toHaveLength(2);
    cli.child.kill("SIGTERM");
    const done = await cli.done;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout + done.stderr).not.toContain(next);

    // Two reads of the env were audited (one per start); the polls in between read nothing.
    const audit = await asAlice(["audit", "--action", "accessed", "--limit", "200", "--json"]);
    expect(audit.code, audit.stderr).toBe(0);
    const rows = JSON.parse(audit.stdout).items.filter((e: { deploymentId: string | null }) => e.deploymentId === server.deployments.watched);
    expect(rows.map((e: { version: number }) => e.version).sort()).toEqual([1, 2]);
  });
});

describe("sigyl env", () => {
  it("prints the env as JSON or dotenv that read back to the exact values", async () => {
    const json = await asBuilder(["env", "--deployment", server.deployments.mcp]).done;
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(VALUES);
    const dotenv = await asBuilder(["env", "--deployment", server.deployments.mcp, "--format", "dotenv"]).done;
    expect(dotenv.code, dotenv.stderr).toBe(0);
    expect(parseDotenv(dotenv.stdout)).toEqual(VALUES);
    expect(json.stderr + dotenv.stderr).toBe("");
    expect(await filesContaining(builderHome, Object.values(VALUES))).toEqual([]);
  });

  it("refuses a format it does not know, as a usage error", async () => {
    const bad = await asBuilder(["env", "--deployment", server.deployments.mcp, "--format", "yaml"]).done;
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe("");
  });
});
