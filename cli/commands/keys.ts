/** `sigyl keys …`: KEK management, for the service role (SIGYL_TOKEN=<the secret key>). */
import { Command } from "commander";
import { unwrap } from "../../shared/client/client.ts";
import { CliError, EXIT } from "../errors.ts";
import { print, printJson, table } from "../io.ts";
import { apiRotationStep, completedMessage, incompleteMessage, rotateInBatches } from "../keys-rotation.ts";
import { sessionOf, wholeNumber } from "./common.ts";

export function keysCommand(): Command {
  const keys = new Command("keys").description("key-encryption keys (service role)");

  keys.command("list")
    .description("the KEK versions, their status and how many DEKs each wraps (never key material)")
    .option("--json", "print JSON")
    .action(async (opts, cmd: Command) => {
      const api = (await sessionOf(cmd)).client();
      const list = await unwrap(api.GET("/secrets/admin/keys"));
      if (opts.json) return printJson(list);
      print(table(["VERSION", "STATUS", "DEKS", "WRAPS", "NEAR LIMIT", "CREATED", "RETIRED"], list.map((k) => [
        k.version, k.status, k.dekCount, k.wraps, k.nearWrapLimit ? "yes: rotate" : "", k.createdAt, k.retiredAt,
      ])));
    });

  keys.command("rotate")
    .description("rotate the KEK: a new key in Vault, every DEK re-wrapped batch by batch (progress on stderr); resumes an open rotation")
    .option("--batch-size <n>", "DEKs per batch, 1 to 5000", wholeNumber("--batch-size"), 500)
    .option("--json", "print the outcome as JSON")
    .action(async (opts, cmd: Command) => {
      const session = await sessionOf(cmd);
      const api = session.client();
      process.stderr.write(`sigyl keys: rotating through ${session.url}, ${opts.batchSize} DEKs per batch\n`);
      const outcome = await rotateInBatches(apiRotationStep(api, opts.batchSize), {
        write: (text) => process.stderr.write(text),
        isTty: Boolean(process.stderr.isTTY),
      });
      if (opts.json) printJson(outcome);
      if (!outcome.completed) throw new CliError(incompleteMessage(outcome), "rotation_incomplete", EXIT.conflict);
      if (!opts.json) print(completedMessage(outcome));
    });

  return keys;
}
