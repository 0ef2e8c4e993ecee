/**
 * `sigyl deployments …`: a deployment owner's side (or the platform's, as the service role):
 * what is bound, binding env vars to secrets, validating, and issuing the short-lived token
 * the container builder hands `sigyl run`.
 */
import { Command, Option } from "commander";
import { type components, unwrap } from "../../shared/client/client.ts";
import { CliError, EXIT, usageError } from "../errors.ts";
import { note, print, printJson, table } from "../io.ts";
import { allPages, resolveSecret, sessionOf, wholeNumber } from "./common.ts";

type Binding = components["schemas"]["Binding"];
type Problem = components["schemas"]["Problem"];

const STATUSES = ["pending", "deploying", "running", "failed", "stopped"];

const bindingsTable = (bindings: Binding[]) =>
  table(["ENV", "SECRET", "STATUS", "PINNED", "SERVED", "CURRENT", "OUTDATED", "SECRET ID"], bindings.map((b) => [
    b.envName, b.secretName, b.status, b.pinnedVersion, b.resolvedVersion, b.currentVersion, b.outdated ? "yes" : "", b.secretId,
  ]));

const problemLines = (problems: Problem[]) => problems.map((p) => `${p.envName}: ${p.message}`).join("\n");

/** `ENV=secret` or `ENV=secret@version`: the secret by name or id. */
const BINDING = /^([A-Za-z_][A-Za-z0-9_]*)=([^@]+)(?:@(\d+))?$/;

export function deploymentsCommand(): Command {
  const deployments = new Command("deployments").description("list your deployments, bind secrets to them, validate them, issue their tokens");

  deployments.command("list").alias("ls")
    .description("your deployments by name (the service role: every owner's), each with the required env vars still unbound")
    .addOption(new Option("--status <status>", "only deployments in this status").choices(STATUSES))
    .option("--owner <user-id>", "service role: one owner's deployments")
    .option("--json", "print JSON")
    .action(async (opts, cmd: Command) => {
      const api = (await sessionOf(cmd)).client();
      const items = await allPages((cursor) => unwrap(api.GET("/secrets/deployments", {
        params: { query: { status: opts.status, ownerId: opts.owner, limit: "100", cursor } },
      })));
      if (opts.json) return printJson(items);
      if (items.length === 0) return note("no deployments");
      print(table(["NAME", "STATUS", "BOUND", "UNBOUND", "ID"], items.map((d) => [
        d.name, d.status, d.bindingCount, d.unboundEnv.join(" "), d.id,
      ])));
    });

  deployments.command("show")
    .description("a deployment's bindings, each with its status and whether a newer version exists (outdated)")
    .argument("<deployment>", "deployment id")
    .option("--json", "print JSON")
    .action(async (id: string, opts, cmd: Command) => {
      const api = (await sessionOf(cmd)).client();
      const answer = await unwrap(api.GET("/secrets/deployments/{id}/secrets", { params: { path: { id } } }));
      if (opts.json) return printJson(answer);
      const d = answer.deployment;
      print(`${d.name} (${d.id}): ${d.status}, ${answer.valid ? "valid" : "not valid"}`);
      if (answer.bindings.length) print(bindingsTable(answer.bindings));
      if (answer.problems.length) print(problemLines(answer.problems));
    });

  deployments.command("bind")
    .description("replace a deployment's bindings: each ENV=SECRET (name or id), or ENV=SECRET@VERSION to pin a version")
    .argument("<deployment>", "deployment id")
    .argument("<bindings...>", "ENV=SECRET or ENV=SECRET@VERSION")
    .option("--json", "print JSON")
    .action(async (id: string, specs: string[], opts, cmd: Command) => {
      const parsed = specs.map((spec) => {
        const m = BINDING.exec(spec);
        if (!m) throw usageError(`not ENV=SECRET or ENV=SECRET@VERSION: ${spec}`);
        return { envName: m[1], ref: m[2], version: m[3] === undefined ? undefined : wholeNumber("a pinned version")(m[3]) };
      });
      const api = (await sessionOf(cmd)).client();
      const bindings = [];
      for (const b of parsed) bindings.push({ envName: b.envName, secretId: await resolveSecret(api, b.ref), version: b.version });
      const answer = await unwrap(api.PUT("/secrets/deployments/{id}/secrets", { params: { path: { id } }, body: { bindings } }));
      if (opts.json) return printJson(answer);
      print(bindingsTable(answer.bindings));
      if (answer.problems.length) note(problemLines(answer.problems));
    });

  deployments.command("validate")
    .description("what would stop the deployment, changing nothing (exit 5 when something would)")
    .argument("<deployment>", "deployment id")
    .option("--json", "print JSON")
    .action(async (id: string, opts, cmd: Command) => {
      const api = (await sessionOf(cmd)).client();
      const answer = await unwrap(api.POST("/secrets/deployments/{id}/validate", { params: { path: { id } } }));
      if (opts.json) printJson(answer);
      else print(answer.valid ? "valid" : problemLines(answer.problems));
      if (!answer.valid) throw new CliError(`the deployment has ${answer.problems.length} problem(s)`, "deployment_invalid", EXIT.conflict);
    });

  deployments.command("token")
    .description("issue a deployment token (shown once) for sigyl run / sigyl env: SIGYL_DEPLOYMENT_TOKEN=$(sigyl deployments token ID)")
    .argument("<deployment>", "deployment id")
    .option("--ttl <seconds>", "lifetime, 60 to 86400 (default 900)", wholeNumber("--ttl", 60))
    .option("--json", "print JSON (id, token, expiresAt)")
    .action(async (id: string, opts, cmd: Command) => {
      const api = (await sessionOf(cmd)).client();
      const issued = await unwrap(api.POST("/secrets/deployments/{id}/tokens", {
        params: { path: { id } }, body: opts.ttl === undefined ? {} : { ttlSeconds: opts.ttl },
      }));
      if (opts.json) return printJson(issued);
      print(issued.token);
      note(`token ${issued.id} expires at ${issued.expiresAt}`);
    });

  return deployments;
}
