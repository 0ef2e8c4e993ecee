/**
 * The `sigyl` commands a person types, against a real `npm start`: signing in (a token on
 * stdin, or email and password with the session refreshed when it expires) into a file only
 * its owner may read; `set` taking the value from stdin and never from an argument; `get`
 * printing the value only with --reveal; every kind of failure as one line and its documented
 * exit code; and `keys rotate` as the service role.
 */
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliServer, encodings, filesContaining, sigyl, startCliServer } from "./cli-harness.ts";

const run = Math.random().toString(36).slice(2, 8);
let server: CliServer;
let configFile: string;

/** One error line: `sigyl: <message> (<code>)`. */
const errorLine = (code: string) => new RegExp(`^sigyl: [^\\n]+ \\(${code}\\)\\n$`);

const as = (who: "alice" | "bob", args: string[], input?: string) =>
  sigyl(server, args, { input, env: { SIGYL_TOKEN: server.users[who].token } });

/** Every value this suite stored: none may show up where the test says it must not. */
const stored: string[] = [];

beforeAll(async () => {
  server = await startCliServer({
    users: ["alice", "bob"],
    deployments: { "alice-web": { owner: "alice" }, "alice-api": { owner: "alice", status: "stopped" }, "bob-mcp": { owner: "bob" } },
  });
  configFile = join(server.home, ".config", "sigyl", "config.json");
});

afterAll(async () => {
  await server?.close();
});

describe("sigyl login, whoami, logout", () => {
  it("stores a token read from stdin in a file only its owner may read, and whoami checks it against the API", async () => {
    const login = await sigyl(server, ["login"], { input: `${server.users.alice.token}\n` });
    expect(login.code, login.stderr).toBe(0);
    expect((await stat(configFile)).mode & 0o777).toBe(0o600);
    expect((await stat(join(server.home, ".config", "sigyl"))).mode & 0o777).toBe(0o700);
    expect(JSON.parse(await readFile(configFile, "utf8"))).toEqual({ url: server.url, token: server.users.alice.token });
    expect(login.stdout + login.stderr).not.toContain(server.users.alice.token);

    const who = await sigyl(server, ["whoami", "--json"]);
    expect(who.code, who.stderr).toBe(0);
    expect(JSON.parse(who.stdout)).toMatchObject({
      kind: "user", email: server.users.alice.email, userId: server.users.alice.id, source: "config", verified: true, url: server.url,
    });
    // Sent to another server, the stored token is not used at all.
    const elsewhere = await sigyl(server, ["whoami"], { url: "http://127.0.0.1:9/functions/v1" });
    expect(elsewhere.code).toBe(3);
    expect(elsewhere.stderr).toMatch(errorLine("unauthenticated"));
  });

  it("refuses a token the API refuses, and keeps the stored one", async () => {
    const before = await readFile(configFile, "utf8");
    const bad = await sigyl(server, ["login"], { input: "not-a-token" });
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(errorLine("unauthenticated"));
    expect(await readFile(configFile, "utf8")).toBe(before);
    // A token is never an argument.
    const argv = await sigyl(server, ["login", server.users.bob.token]);
    expect(argv.code).toBe(2);
    expect(await readFile(configFile, "utf8")).toBe(before);
  });

  it("signs in with email and password, stores the session, and refreshes it once it has expired", async () => {
    const email = `carol-${run}@example.com`;
    const password = `pw carol ${run} "quoted"`;
    const signup = await fetch(`${server.origin}/auth/v1/signup`, {
      method: "POST",
      headers: { apikey: server.keys.publishableKey, "content-type": "application/json" },
      body: JSON.stringify({ email, password }),
    });
    expect(signup.status).toBe(200);
    const home = join(server.home, "carol");
    const opts = { home, env: { SIGYL_APIKEY: server.keys.publishableKey } };
    const wrong = await sigyl(server, ["login", "--email", email], { ...opts, input: "wrong password" });
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toMatch(errorLine("invalid_credentials"));

    const login = await sigyl(server, ["login", "--email", email], { ...opts, input: `${password}\n` });
    expect(login.code, login.stderr).toBe(0);
    const file = join(home, ".config", "sigyl", "config.json");
    const first = JSON.parse(await readFile(file, "utf8"));
    expect(first).toMatchObject({ url: server.url, email, apikey: server.keys.publishableKey });
    expect(first.refreshToken).toEqual(expect.any(String));
    expect(await readFile(file, "utf8")).not.toContain(password);

    // Expired (as far as the CLI knows): the next command refreshes, stores the new session, and works.
    await writeFile(file, JSON.stringify({ ...first, expiresAt: Math.floor(Date.now() / 1000) - 5 }), { mode: 0o600 });
    const who = await sigyl(server, ["whoami", "--json"], opts);
    expect(who.code, who.stderr).toBe(0);
    expect(JSON.parse(who.stdout)).toMatchObject({ email, source: "config" });
    const second = JSON.parse(await readFile(file, "utf8"));
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(second.expiresAt).toBeGreaterThan(Date.now() / 1000);
    expect((await stat(file)).mode & 0o777).toBe(0o600);

    const logout = await sigyl(server, ["logout"], opts);
    expect(logout.code, logout.stderr).toBe(0);
    await expect(stat(file)).rejects.toMatchObject({ code: "ENOENT" });
    // The session ended on the server: its refresh token no longer refreshes.
    const refresh = await fetch(`${server.origin}/auth/v1/token?grant_type=refresh_token`, {
      method: "POST",
      headers: { apikey: server.keys.publishableKey, "content-type": "application/json" },
      body: JSON.stringify({ refresh_token: second.refreshToken }),
    });
    expect(refresh.status).toBe(400);
  });
});

describe("sigyl secrets", () => {
  it("set never takes the value from an argument: a usage error, and nothing is stored", async () => {
    const name = `ARGV_${run}`;
    const value = `argv-value-${run}`;
    for (const args of [["secrets", "set", name, value], ["secrets", "set", name, "--value", value], ["secrets", "set", `${name}=${value}`]]) {
      const r = await as("alice", args, "");
      expect(r.code, args.join(" ")).toBe(2);
    }
    // Empty stdin is no value either.
    const empty = await as("alice", ["secrets", "set", name], "");
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(errorLine("usage"));
    const list = await as("alice", ["secrets", "list", "--json", "--include-inactive"]);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout).map((s: { name: string }) => s.name)).not.toContain(name);
    expect(list.stdout).not.toContain(value);
  });

  it("set reads the value from stdin; get shows it only with --reveal, and no other read prints it", async () => {
    const name = `REVEAL_${run}`;
    const value = `sk-live-${run} "q" $HOME \\ ünï`;
    stored.push(value);
    const set = await as("alice", ["secrets", "set", name, "--tag", "prod", "--type", "api_key"], `${value}\n`);
    expect(set.code, set.stderr).toBe(0);

    const reads = [
      ["secrets", "get", name], ["secrets", "get", name, "--json"], ["secrets", "list"], ["secrets", "list", "--json"],
      ["secrets", "versions", name], ["secrets", "versions", name, "--json"], ["audit"], ["audit", "--json"],
    ];
    for (const args of reads) {
      const r = await as("alice", args);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
      for (const form of encodings(value)) expect(r.stdout + r.stderr, args.join(" ")).not.toContain(form.toString());
    }
    const meta = JSON.parse((await as("alice", ["secrets", "get", name, "--json"])).stdout);
    expect(meta).toMatchObject({ name, secretType: "api_key", tags: ["prod"], currentVersion: 1 });

    const reveal = await as("alice", ["secrets", "get", name, "--reveal"]);
    expect(reveal.code, reveal.stderr).toBe(0);
    expect(reveal.stdout).toBe(value);
    const revealJson = JSON.parse((await as("alice", ["secrets", "get", name, "--reveal", "--json"])).stdout);
    expect(revealJson).toMatchObject({ value, version: 1 });

    // A new version, then a roll-back to the first: the value is the first again.
    expect((await as("alice", ["secrets", "set", name, "--expected-version", "1"], "second")).code).toBe(0);
    expect((await as("alice", ["secrets", "rollback", name, "1"])).code).toBe(0);
    expect((await as("alice", ["secrets", "get", name, "--reveal"])).stdout).toBe(value);
    expect((await as("alice", ["secrets", "get", name, "--reveal", "--version", "2"])).stdout).toBe("second");
    expect(await filesContaining(server.home, stored)).toEqual([]);
    expect(await filesContaining(server.cwd, stored)).toEqual([]);
  });

  it("shares and unshares by email, deletes and restores by name", async () => {
    const name = `SHARED_${run}`;
    expect((await as("alice", ["secrets", "set", name], "shared-value")).code).toBe(0);
    const share = await as("alice", ["secrets", "share", name, server.users.bob.email, "--permission", "read"]);
    expect(share.code, share.stderr).toBe(0);
    const id = JSON.parse((await as("alice", ["secrets", "get", name, "--json"])).stdout).id;
    expect((await as("bob", ["secrets", "get", id, "--reveal"])).stdout).toBe("shared-value");
    const unshare = await as("alice", ["secrets", "unshare", name, server.users.bob.email]);
    expect(unshare.code, unshare.stderr).toBe(0);
    expect((await as("bob", ["secrets", "get", id, "--reveal"])).code).toBe(4);

    expect((await as("alice", ["secrets", "rm", name])).code).toBe(0);
    expect((await as("alice", ["secrets", "get", name])).code).toBe(4);
    const restore = await as("alice", ["secrets", "restore", name]);
    expect(restore.code, restore.stderr).toBe(0);
    expect((await as("alice", ["secrets", "get", name, "--reveal"])).stdout).toBe("shared-value");
  });
});

describe("sigyl deployments list", () => {
  it("lists the caller's own deployments by name, as a table or JSON, filtered by status", async () => {
    const { deployments: ids } = server;
    const table = await as("alice", ["deployments", "list"]);
    expect(table.code, table.stderr).toBe(0);
    const rows = table.stdout.trim().split("\n");
    expect(rows[0]).toMatch(/^NAME\s+STATUS\s+BOUND\s+UNBOUND\s+ID$/);
    // By name (the harness suffixes each): alice-api before alice-web; never Bob's.
    expect(rows.slice(1).map((r) => r.split(/\s+/).at(-1))).toEqual([ids["alice-api"], ids["alice-web"]]);
    expect(table.stdout).not.toContain(ids["bob-mcp"]);

    const json = await as("alice", ["deployments", "list", "--status", "stopped", "--json"]);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([{
      id: ids["alice-api"], name: expect.stringMatching(/^alice-api-/), status: "stopped", ownerId: server.users.alice.id,
      requiredEnv: [], bindingCount: 0, unboundEnv: [],
    }]);
    const bob = await as("bob", ["deployments", "ls", "--json"]);
    expect(JSON.parse(bob.stdout).map((d: { id: string }) => d.id)).toEqual([ids["bob-mcp"]]);
  });
});

describe("exit codes", () => {
  it("maps each kind of failure to its documented exit code, in one line naming the server's code", async () => {
    const name = `CODES_${run}`;
    expect((await as("alice", ["secrets", "set", name], "codes-value")).code).toBe(0);
    const id = JSON.parse((await as("alice", ["secrets", "get", name, "--json"])).stdout).id;
    expect((await as("alice", ["secrets", "share", name, server.users.bob.email, "--permission", "read"])).code).toBe(0);
    const deleted = `DELETED_${run}`;
    expect((await as("alice", ["secrets", "set", deleted], "gone")).code).toBe(0);
    const deletedId = JSON.parse((await as("alice", ["secrets", "get", deleted, "--json"])).stdout).id;
    expect((await as("alice", ["secrets", "rm", deletedId])).code).toBe(0);

    const cases: { args: string[]; who?: "alice" | "bob"; token?: string; url?: string; input?: string; exit: number; code: string }[] = [
      { args: ["secrets", "list"], token: "not-a-token", exit: 3, code: "unauthenticated" },
      { args: ["secrets", "rm", id], who: "bob", exit: 3, code: "forbidden" },
      { args: ["keys", "list"], who: "alice", exit: 3, code: "forbidden" },
      { args: ["secrets", "get", "00000000-0000-4000-8000-000000000000"], who: "alice", exit: 4, code: "secret_not_found" },
      { args: ["secrets", "get", `NO_SUCH_${run}`], who: "alice", exit: 4, code: "secret_not_found" },
      { args: ["secrets", "set", name, "--expected-version", "7"], who: "alice", input: "v", exit: 5, code: "version_conflict" },
      { args: ["secrets", "restore", id], who: "alice", exit: 5, code: "secret_not_deleted" },
      { args: ["secrets", "set", `1bad-${run}`], who: "alice", input: "v", exit: 6, code: "invalid_request" },
      { args: ["secrets", "get", deletedId, "--reveal"], who: "alice", exit: 6, code: "secret_deleted" },
      { args: ["secrets", "list"], who: "alice", url: "http://127.0.0.1:9/functions/v1", exit: 7, code: "unreachable" },
      { args: ["secrets", "list", "--no-such-flag"], who: "alice", exit: 2, code: "" },
      { args: ["secrets", "frobnicate"], who: "alice", exit: 2, code: "" },
      { args: ["secrets", "get", name, "--version", "0", "--reveal"], who: "alice", exit: 2, code: "usage" },
    ];
    for (const c of cases) {
      const token = c.token ?? server.users[c.who!].token;
      const r = await sigyl(server, c.args, { input: c.input, url: c.url, env: { SIGYL_TOKEN: token } });
      expect(r.code, `${c.args.join(" ")}: ${r.stderr}`).toBe(c.exit);
      if (c.code) expect(r.stderr, c.args.join(" ")).toMatch(errorLine(c.code));
      expect(r.stdout, c.args.join(" ")).toBe("");
    }
  });
});

describe("sigyl keys rotate", () => {
  it("rotates as the service role with a progress bar on stderr, and values still read", async () => {
    const name = `ROTATED_${run}`;
    expect((await as("alice", ["secrets", "set", name], "rotated-value")).code).toBe(0);
    const service = { SIGYL_TOKEN: server.keys.secretKey };
    const rotate = await sigyl(server, ["keys", "rotate", "--batch-size", "1", "--json"], { env: service });
    expect(rotate.code, rotate.stderr).toBe(0);
    const outcome = JSON.parse(rotate.stdout);
    expect(outcome).toMatchObject({ fromVersion: 1, toVersion: 2, remaining: 0, completed: true });
    expect(outcome.rewrapped).toBeGreaterThanOrEqual(1);
    expect(rotate.stderr).toContain(`rotating through ${server.url}, 1 DEKs per batch`);
    expect(rotate.stderr).toMatch(/KEK v1 -> v2 \[#{30}\] 100% \d+\/\d+ DEKs re-wrapped/);
    const keys = JSON.parse((await sigyl(server, ["keys", "list", "--json"], { env: service })).stdout);
    expect(keys.map((k: { version: number; status: string }) => [k.version, k.status])).toEqual([[1, "retired"], [2, "active"]]);
    expect((await as("alice", ["secrets", "get", name, "--reveal"])).stdout).toBe("rotated-value");
  });
});
