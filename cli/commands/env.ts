/**
 * `sigyl env` and `sigyl run`: the container builder's side. Both authenticate with the
 * deployment token in SIGYL_DEPLOYMENT_TOKEN (never a flag: a command line is visible to every
 * process on the host), or else the configured credential (the platform's service role).
 */
import { Command, Option } from "commander";
import { apiError } from "../../shared/client/client.ts";
import { usageError } from "../errors.ts";
import { printJson } from "../io.ts";
import { envFetcher, runWithEnv } from "../run.ts";
import { seconds, sessionOf } from "./common.ts";

export function envCommand(): Command {
  return new Command("env")
    .description("print a deployment's env (its values: for a runtime that reads them from a pipe or a tmpfs)")
    .requiredOption("--deployment <id>", "deployment id")
    .addOption(new Option("--format <format>", "json (an object) or dotenv (NAME=value lines)").choices(["json", "dotenv"]).default("json"))
    .option("--json", "the same as --format json")
    .action(async (opts, cmd: Command) => {
      const api = (await sessionOf(cmd)).deploymentClient();
      const format = opts.json ? "json" : opts.format;
      if (format === "json") {
        const fetched = await envFetcher(api, opts.deployment)();
        printJson(fetched!.env);
        return;
      }
      const { data, error, response } = await api.GET("/secrets/deployments/{id}/env", {
        params: { path: { id: opts.deployment }, query: { format: "dotenv" } }, parseAs: "text",
      });
      if (!response.ok || typeof data !== "string") throw apiError(response, error);
      process.stdout.write(data);
    });
}

export function runCommand(): Command {
  return new Command("run")
    .description("run a command with a deployment's env added to its environment: sigyl run --deployment ID -- cmd args…")
    .requiredOption("--deployment <id>", "deployment id")
    .option("--watch", "restart the command when the deployment's env changes")
    .option("--interval <seconds>", "with --watch: seconds between checks", seconds("--interval"), 10)
    .option("--grace <seconds>", "with --watch: seconds a stopped command gets before SIGKILL", seconds("--grace"), 10)
    .argument("<command>", "the program to run (no shell: use sh -c '…' for one)")
    .argument("[args...]", "its arguments")
    .action(async (command: string, args: string[], opts, cmd: Command) => {
      if (!opts.watch && (cmd.getOptionValueSource("interval") === "cli" || cmd.getOptionValueSource("grace") === "cli")) {
        throw usageError("--interval and --grace go with --watch");
      }
      const api = (await sessionOf(cmd)).deploymentClient();
      const code = await runWithEnv({
        command, args,
        fetchEnv: envFetcher(api, opts.deployment),
        watch: opts.watch ? { intervalMs: opts.interval * 1000, graceMs: opts.grace * 1000 } : undefined,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      process.exitCode = code;
    });
}
