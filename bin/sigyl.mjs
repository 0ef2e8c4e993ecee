#!/usr/bin/env node
// The `sigyl` command: the CLI is TypeScript (cli/), loaded through tsx in this one process, so
// that `sigyl run` is the direct parent of its command (signals, exit code).
const [major] = process.versions.node.split(".").map(Number);
if (major < 20) {
  process.stderr.write(`sigyl: Node 20 or later is needed, this is ${process.version} (unsupported_node)\n`);
  process.exit(1);
}
const { register } = await import("tsx/esm/api");
register();
const { main } = await import(new URL("../cli/main.ts", import.meta.url).href);
const code = await main(process.argv.slice(2));
// Let stdout and stderr drain before exiting (piped output is written asynchronously).
process.exitCode = code;
