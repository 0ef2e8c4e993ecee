// Path helpers from node: builtins, which both Deno and Node provide.
export { dirname, isAbsolute, join } from "node:path";
export { fileURLToPath as fromFileUrl } from "node:url";
