/**
 * `npm run client:generate`: writes shared/client/schema.ts from the OpenAPI document the
 * function serves. `--check` writes nothing and exits 1 when the file is out of date.
 */
import { schemaSource, servedDocument } from "../shared/client/generate.ts";

const target = new URL("../shared/client/schema.ts", import.meta.url);
const source = await schemaSource(await servedDocument());
const current = await Deno.readTextFile(target).catch(() => "");
if (Deno.args.includes("--check")) {
  if (current !== source) {
    console.error("client: shared/client/schema.ts is out of date: run npm run client:generate");
    Deno.exit(1);
  }
  console.log("client: shared/client/schema.ts is up to date");
} else if (current === source) {
  console.log("client: shared/client/schema.ts unchanged");
} else {
  await Deno.writeTextFile(target, source);
  console.log("client: wrote shared/client/schema.ts");
}
