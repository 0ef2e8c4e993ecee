/**
 * `sigyl secrets …`: list, read, write, delete and share secrets as the signed-in user. A value
 * is read from stdin or a no-echo prompt, never from an argument (it would sit in the shell's
 * history and in every process listing), and printed only by `get --reveal`.
 */
import { Command, Option } from "commander";
import { unwrap } from "../../shared/client/client.ts";
import { CliError, EXIT, usageError } from "../errors.ts";
import { note, print, printJson, readSecretInput, table } from "../io.ts";
import { isUuid, listAll, resolveSecret, type Secret, sessionOf, wholeNumber } from "./common.ts";

const TYPES = ["api_key", "database_url", "jwt_secret", "custom"] as const;
const LEVELS = ["use", "read", "write", "admin"] as const;

const describeSecret = (s: Secret) =>
  table(["field", "value"], [
    ["name", s.name], ["id", s.id], ["type", s.secretType], ["status", s.status], ["version", s.currentVersion],
    ["permission", s.permission], ["tags", s.tags.join(", ")], ["description", s.description],
    ["expires", s.expiresAt ?? "never"], ["owner", s.ownerId], ["updated", s.updatedAt],
  ]);

const listTable = (items: Secret[]) =>
  table(
    ["NAME", "TYPE", "STATUS", "VERSION", "PERMISSION", "TAGS", "ID"],
    items.map((s) => [s.name, s.secretType, s.status, s.currentVersion, s.permission, s.tags.join(","), s.id]),
  );

export function secretsCommand(): Command {
  const secrets = new Command("secrets").description("list, read, write, delete and share secrets");

  secrets.command("list").alias("ls")
    .description("list the secrets visible to you, by name")
    .addOption(new Option("--type <type>", "only this type").choices(TYPES))
    .option("--tag <tag>", "only secrets with this tag")
    .option("--prefix <prefix>", "only names starting with this")
    .option("--deleted", "deleted secrets (restorable) instead of live ones")
    .option("--include-inactive", "also secrets switched off or expired")
    .option("--json", "print JSON")
    .action(async (opts, cmd: Command) => {
      const api = (await sessionOf(cmd)).client();
      const items = await listAll(api, {
        type: opts.type, tag: opts.tag, prefix: opts.prefix,
        deleted: opts.deleted ? "true" : undefined, includeInactive: opts.includeInactive ? "true" : undefined,
      });
      if (opts.json) printJson(items);
      else if (items.length === 0) note("no secrets");
      else print(listTable(items));
    });

  secrets.command("get")
    .description("show a secret's metadata; its value only with --reveal")
    .argument("<secret>", "name or id")
    .option("--reveal", "print the value itself (audited as a read)")
    .option("--version <n>", "with --reveal: this version's value", wholeNumber("--version"))
    .option("--json", "print JSON")
    .action(async (ref: string, opts, cmd: Command) => {
      const api = (await sessionOf(cmd)).client();
      const id = await resolveSecret(api, ref);
      if (opts.version !== undefined && !opts.reveal) throw usageError("--version needs --reveal");
      if (!opts.reveal) {
        const secret = await unwrap(api.GET("/secrets/{id}", { params: { path: { id } } }));
        if (opts.json) printJson(secret);
        else print(describeSecret(secret));
        return;
      }
      const value = await unwrap(api.GET("/secrets/{id}/value", {
        params: { path: { id }, query: { version: opts.version === undefined ? undefined : String(opts.version) } },
      }));
      if (opts.json) printJson(value);
      // The value exactly; a line ending only for a person at a terminal.
      else process.stdout.write(process.stdout.isTTY ? `${value.value}\n` : value.value);
    });

  secrets.command("set")
    .description("create a secret, or add a new version of one; the value comes from stdin or a prompt, never an argument")
    .argument("<secret>", "name (created when no secret of that name is visible to you) or id")
    .addOption(new Option("--type <type>", "type, for a new secret").choices(TYPES))
    .option("--description <text>", "description, for a new secret")
    .option("--tag <tag>", "tag, for a new secret (repeatable)", (t: string, all: string[] = []) => [...all, t])
    .option("--expires-at <iso>", "expiry, for a new secret (ISO 8601 with offset)")
    .option("--expected-version <n>", "fail with a conflict unless the current version is this one", wholeNumber("--expected-version"))
    .option("--keep-trailing-newline", "keep a final newline of piped input (dropped by default, as echo adds one)")
    .option("--json", "print the secret's metadata as JSON")
    .allowExcessArguments(true)
    .action(async (ref: string, opts, cmd: Command) => {
      if (cmd.args.length > 1) {
        throw usageError("set takes no value argument (it would stay in your shell history); pipe the value on stdin or type it at the prompt");
      }
      const api = (await sessionOf(cmd)).client();
      let id: string | null = null;
      try {
        id = await resolveSecret(api, ref);
      } catch (err) {
        if (!(err instanceof CliError && err.code === "secret_not_found") || isUuid(ref)) throw err;
      }
      if (id === null && opts.expectedVersion !== undefined) {
        throw new CliError(`no secret named ${ref} is visible to you`, "secret_not_found", EXIT.notFound);
      }
      const value = await readSecretInput(`value for ${ref} (not echoed): `, { keepFinalNewline: opts.keepTrailingNewline });
      let secret: Secret;
      if (id === null) {
        secret = await unwrap(api.POST("/secrets", {
          body: {
            name: ref, value, secretType: opts.type, description: opts.description, tags: opts.tag, expiresAt: opts.expiresAt,
          },
        }));
      } else {
        if (opts.type || opts.description !== undefined || opts.tag || opts.expiresAt) {
          note("sigyl: --type, --description, --tag and --expires-at apply to a new secret only; unchanged");
        }
        secret = await unwrap(api.PUT("/secrets/{id}/value", {
          params: { path: { id } }, body: { value, expectedVersion: opts.expectedVersion },
        }));
      }
      if (opts.json) printJson(secret);
      else print(`${secret.name}: version ${secret.currentVersion} (${secret.id})`);
    });

  secrets.command("rm")
    .description("delete a secret (restorable during its recovery window)")
    .argument("<secret>", "name or id")
    .option("--json", "print the secret's metadata as JSON")
    .action(async (ref: string, opts, cmd: Command) => {
      const api = (await sessionOf(cmd)).client();
      const id = await resolveSecret(api, ref);
      const secret = await unwrap(api.DELETE("/secrets/{id}", { params: { path: { id } } }));
      if (opts.json) printJson(secret);
      else print(`${secret.name}: deleted (sigyl secrets restore ${secret.id} undoes it)`);
    });

  secrets.command("restore")
    .description("undo the deletion of a secret")
    .argument("<secret>", "name or id of the deleted secret")
    .option("--json", "print the secret's metadata as JSON")
    .action(async (ref: string, opts, cmd: Command) => {
      const api = (await sessionOf(cmd)).client();
      const id = await resolveSecret(api, ref, { deleted: true });
      const secret = await unwrap(api.POST("/secrets/{id}/restore", { params: { path: { id } } }));
      if (opts.json) printJson(secret);
      else print(`${secret.name}: ${secret.status}`);
    });

  secrets.command("versions")
    .description("a secret's versions, newest first (no values)")
    .argument("<secret>", "name or id")
    .option("--json", "print JSON")
    .action(async (ref: string, opts, cmd: Command) => {
      const api = (await sessionOf(cmd)).client();
      const id = await resolveSecret(api, ref);
      const versions = await unwrap(api.GET("/secrets/{id}/versions", { params: { path: { id } } }));
      if (opts.json) printJson(versions);
      else {
        print(table(["VERSION", "CURRENT", "CREATED", "BY", "RESTORED FROM", "KEK"], versions.map((v) => [
          v.version, v.current ? "*" : "", v.createdAt, v.createdBy, v.restoredFrom, v.kekVersion,
        ])));
      }
    });

  secrets.command("rollback")
    .description("make a new version holding an earlier version's value")
    .argument("<secret>", "name or id")
    .argument("<version>", "the version whose value comes back", wholeNumber("<version>"))
    .option("--expected-version <n>", "fail with a conflict unless the current version is this one", wholeNumber("--expected-version"))
    .option("--json", "print the secret's metadata as JSON")
    .action(async (ref: string, version: number, opts, cmd: Command) => {
      const api = (await sessionOf(cmd)).client();
      const id = await resolveSecret(api, ref);
      const secret = await unwrap(api.POST("/secrets/{id}/versions/{n}/restore", {
        params: { path: { id, n: String(version) } },
        body: opts.expectedVersion === undefined ? {} : { expectedVersion: opts.expectedVersion },
      }));
      if (opts.json) printJson(secret);
      else print(`${secret.name}: version ${secret.currentVersion} holds version ${version}'s value`);
    });

  secrets.command("share")
    .description("grant a user a permission on a secret (again: change the level)")
    .argument("<secret>", "name or id")
    .argument("<user>", "the user's email or id")
    .addOption(new Option("--permission <level>", "what the user may do").choices(LEVELS).makeOptionMandatory())
    .option("--json", "print the grant as JSON")
    .action(async (ref: string, user: string, opts, cmd: Command) => {
      const api = (await sessionOf(cmd)).client();
      const id = await resolveSecret(api, ref);
      const who = isUuid(user) ? { userId: user } : { email: user };
      const grant = await unwrap(api.PUT("/secrets/{id}/permissions", {
        params: { path: { id } }, body: { ...who, permission: opts.permission },
      }));
      if (opts.json) printJson(grant);
      else print(`${grant.email ?? grant.userId}: ${grant.permission} on ${ref}`);
    });

  secrets.command("unshare")
    .description("revoke a user's grant on a secret")
    .argument("<secret>", "name or id")
    .argument("<user>", "the user's email or id")
    .option("--json", "print JSON")
    .action(async (ref: string, user: string, opts, cmd: Command) => {
      const api = (await sessionOf(cmd)).client();
      const id = await resolveSecret(api, ref);
      let userId = user;
      if (!isUuid(user)) {
        const grants = await unwrap(api.GET("/secrets/{id}/permissions", { params: { path: { id } } }));
        const grant = grants.find((g) => g.email?.toLowerCase() === user.toLowerCase());
        if (!grant) throw new CliError(`${user} holds no grant on ${ref}`, "grant_not_found", EXIT.notFound);
        userId = grant.userId;
      }
      const revoked = await unwrap(api.DELETE("/secrets/{id}/permissions/{userId}", { params: { path: { id, userId } } }));
      if (opts.json) printJson(revoked);
      else print(`${user}: no longer has access to ${ref}`);
    });

  return secrets;
}
