/**
 * The `sigyl` command line (bin/sigyl.mjs loads this under Node ≥ 20). Every command speaks to
 * the API through the one typed client (shared/client/client.ts). Exit codes: 0 ok, 1
 * unexpected, 2 usage, 3 auth (401/403), 4 not found, 5 conflict (409/412), 6 another 4xx,
 * 7 server or network; `run` exits with its command's code (128 + n for a signal).
 */
import { Command, CommanderError, Option } from "commander";
import { auditCommand } from "./commands/audit.ts";
import { loginCommand, logoutCommand, whoamiCommand } from "./commands/auth.ts";
import { deploymentsCommand } from "./commands/deployments.ts";
import { envCommand, runCommand } from "./commands/env.ts";
import { keysCommand } from "./commands/keys.ts";
import { secretsCommand } from "./commands/secrets.ts";
import { DEFAULT_URL } from "./config.ts";
import { describeFailure, EXIT } from "./errors.ts";

const EXIT_CODES = `
Exit codes:
  0  ok                         4  not found (404)
  1  unexpected                 5  conflict (409, 412)
  2  usage                      6  another client error (4xx)
  3  auth (401, 403)            7  server error or unreachable (5xx)
  sigyl run exits with its command's code (128 + n when signal n ended it)`;

/** The whole command tree; exported so tests can walk it. */
export function buildProgram(): Command {
  const program = new Command("sigyl")
    .description("Sigyl Secrets from the command line: secrets, audit, deployments, and sigyl run")
    .addOption(new Option("--url <url>", `the functions URL (default ${DEFAULT_URL}, or the stored one)`).env("SIGYL_URL"))
    .addOption(new Option("--token <token>", "a user token or the service role's key (prefer SIGYL_TOKEN or sigyl login: arguments are visible to other processes)"))
    .showHelpAfterError("(add --help for usage)")
    .addHelpText("after", EXIT_CODES)
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text) });
  for (const command of [
    loginCommand(), logoutCommand(), whoamiCommand(), secretsCommand(), auditCommand(), deploymentsCommand(), envCommand(),
    runCommand(), keysCommand(),
  ]) program.addCommand(command);
  // Every command, however deep, reports usage errors to us instead of exiting by itself.
  const settle = (cmd: Command) => {
    cmd.exitOverride();
    cmd.showHelpAfterError("(add --help for usage)");
    cmd.commands.forEach(settle);
  };
  program.commands.forEach(settle);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version are not failures; commander has printed the usage error already.
      return err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help"
        ? EXIT.ok
        : EXIT.usage;
    }
    const url = program.opts().url ?? process.env.SIGYL_URL ?? DEFAULT_URL;
    const { line, exitCode } = describeFailure(err, url);
    process.stderr.write(`${line}\n`);
    return exitCode;
  }
}
