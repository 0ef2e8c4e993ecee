/**
 * Keyset cursors: the last row's sort key and id, as base64url JSON. Opaque to callers; a
 * cursor that does not decode to a key `keyOk` accepts and a UUID is `invalid_cursor` (400).
 */
import { fromBase64Url, toBase64Url } from "../bytes.ts";
import { appError } from "../errors.ts";
import { UUID_PATTERN } from "./validation.ts";

export function encodeCursor(key: string, id: string): string {
  return toBase64Url(new TextEncoder().encode(JSON.stringify([key, id])));
}

export function decodeCursor(cursor: string, keyOk: (key: string) => boolean): { key: string; id: string } {
  try {
    const [key, id] = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(fromBase64Url(cursor)));
    if (typeof key === "string" && keyOk(key) && typeof id === "string" && UUID_PATTERN.test(id)) return { key, id };
  } catch { /* fall through */ }
  throw appError("invalid_cursor");
}
