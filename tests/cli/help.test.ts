/**
 * `--help` on every command: the command tree is walked from the program itself, so a command
 * added later is covered without editing this file, and each one's help is asked of the real
 * CLI. The commands the README documents must all be there.
 */
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { buildProgram } from "../../cli/main.ts";
import { sigyl } from "./cli-harness.ts";

/** Every command path, `[]` for the program itself. */
function paths(cmd: Command, prefix: string[] = []): { path: string[]; cmd: Command }[] {
  return [{ path: prefix, cmd }, ...cmd.commands.flatMap((c) => paths(c, [...prefix, c.name()]))];
}

const nowhere = { url: "http://127.0.0.1:9/functions/v1", home: "/nonexistent", cwd: process.cwd() };

describe("sigyl --help", () => {
  const all = paths(buildProgram());

  it("has every command the README documents", () => {
    const names = all.map((p) => p.path.join(" "));
    for (const expected of [
      "login", "logout", "whoami", "secrets list", "secrets get", "secrets set", "secrets rm", "secrets restore",
      "secrets versions", "secrets rollback", "secrets share", "secrets unshare", "audit", "deployments list", "deployments show",
      "deployments bind", "deployments validate", "deployments token", "env", "run", "keys list", "keys rotate",
    ]) expect(names).toContain(expected);
  });

  it("describes every command and option", () => {
    for (const { path, cmd } of all) {
      expect(cmd.description(), path.join(" ")).not.toBe("");
      for (const option of cmd.options) expect(option.description, `${path.join(" ")} ${option.flags}`).not.toBe("");
    }
  });

  it("answers --help on every command with its usage and exit code 0, asking nothing of the server", async () => {
    const queue = [...all];
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const r = await sigyl(nowhere, [...next.path, "--help"]);
        const where = next.path.join(" ") || "sigyl";
        expect(r.code, `${where}: ${r.stderr}`).toBe(0);
        expect(r.stdout, where).toContain(`Usage: sigyl${next.path.length ? ` ${next.path.join(" ")}` : ""}`);
        // Help wraps lines to the terminal's width: compare with the spacing collapsed.
        expect(r.stdout.replace(/\s+/g, " "), where).toContain(next.cmd.description());
        expect(r.stderr, where).toBe("");
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    // The exit codes are part of the program's help.
    const top = await sigyl(nowhere, ["--help"]);
    for (const line of ["2  usage", "3  auth (401, 403)", "4  not found (404)", "5  conflict (409, 412)", "7  server error or unreachable"]) {
      expect(top.stdout).toContain(line);
    }
  });
});
