/**
 * Conditional reads (`If-None-Match` → `304 Not Modified`), for answers a client polls: a
 * deployment's bindings and its env. The ETag is a fingerprint of what the answer holds; a
 * client sends it back and gets 304 with no body while it is current.
 */
import type { Context } from "hono";
import { sha256Base64 } from "../bytes.ts";

/** More tags than any client holds for one URL; the rest of a longer header is ignored. */
const MAX_TAGS = 16;

/**
 * The entity tags an `If-None-Match` header lists, compared weakly (RFC 9110 §13.1.2: `W/`
 * dropped), or `["*"]`; null when the header is absent or holds no tag.
 */
export function ifNoneMatch(header: string | undefined): string[] | null {
  if (!header) return null;
  if (header.trim() === "*") return ["*"];
  const tags = [...header.matchAll(/(?:W\/)?"([\x21\x23-\x7e]*)"/g)].slice(0, MAX_TAGS).map((m) => m[1]);
  return tags.length ? tags : null;
}

/** The quoted strong ETag of an opaque fingerprint. */
export const etagOf = (fingerprint: string) => `"${fingerprint}"`;

/** A fingerprint of a JSON answer's data: 128 bits of its SHA-256. */
export async function fingerprintOf(data: unknown): Promise<string> {
  return (await sha256Base64(JSON.stringify(data))).slice(0, 22).replaceAll("+", "-").replaceAll("/", "_");
}

/** Whether the tags the client holds name `fingerprint` (or are `*`). */
export const holds = (tags: string[] | null, fingerprint: string) =>
  tags !== null && (tags.includes(fingerprint) || tags.includes("*"));

/** `304 Not Modified` with the ETag: no body, headers set so far (e.g. `Cache-Control`) kept. */
export function notModified(c: Context, fingerprint: string) {
  c.header("ETag", etagOf(fingerprint));
  return c.body(null, 304);
}
