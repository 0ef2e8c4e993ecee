/** `sigyl audit`: the caller's view of the audit trail, newest first, a page at a time. */
import { Command, Option } from "commander";
import { type paths, unwrap } from "../../shared/client/client.ts";
import { note, print, printJson, table } from "../io.ts";
import { resolveSecret, sessionOf, wholeNumber } from "./common.ts";

type AuditQuery = NonNullable<paths["/secrets/audit"]["get"]["parameters"]["query"]>;
const ACTIONS = [
  "created", "accessed", "updated", "rotated", "deleted", "restored", "purged", "shared", "unshared", "expired", "denied",
  "key_rotated", "bound", "unbound",
] as const satisfies readonly NonNullable<AuditQuery["action"]>[];

export function auditCommand(): Command {
  return new Command("audit")
    .description("your own actions and the events on secrets you own or administer, newest first")
    .option("--secret <secret>", "only this secret (name or id)")
    .addOption(new Option("--action <action>", "only this action").choices(ACTIONS))
    .option("--since <iso>", "from this time (ISO 8601)")
    .option("--until <iso>", "up to this time (ISO 8601)")
    .option("--limit <n>", "entries per page, 1 to 200", wholeNumber("--limit"), 50)
    .option("--cursor <cursor>", "the page after this cursor (printed on stderr after a full page)")
    .option("--json", "print JSON ({items, nextCursor})")
    .action(async (opts, cmd: Command) => {
      const api = (await sessionOf(cmd)).client();
      const secretId = opts.secret ? await resolveSecret(api, opts.secret, {}) : undefined;
      const page = await unwrap(api.GET("/secrets/audit", {
        params: {
          query: {
            secretId, action: opts.action, since: opts.since, until: opts.until, limit: String(opts.limit), cursor: opts.cursor,
          },
        },
      }));
      if (opts.json) return printJson(page);
      print(table(["TIME", "ACTION", "OUTCOME", "SECRET", "VERSION", "ACTOR", "DEPLOYMENT", "IP"], page.items.map((e) => [
        e.createdAt, e.action, e.outcome, e.secretName ?? e.secretId, e.version, `${e.actorType}${e.actorId ? ` ${e.actorId}` : ""}`,
        e.deploymentId, e.ip,
      ])));
      if (page.nextCursor) note(`more: sigyl audit --cursor ${page.nextCursor}`);
    });
}
