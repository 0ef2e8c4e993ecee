/**
 * Bytes as text, the one place for it: base64 both ways (bytea crosses the database driver as
 * base64, and KEK material comes out of Vault that way), base64url, and SHA-256. Plain loops:
 * `Uint8Array.from(atob(s), fn)` was a hot spot in `npm run bench`, and Node 20 has no
 * `Uint8Array.fromBase64`.
 */

export function toBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** Throws on text that is not base64 (atob's own error). */
export function fromBase64(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Base64 with the URL alphabet and no padding (tokens, cursors). */
export function toBase64Url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function fromBase64Url(text: string): Uint8Array {
  return fromBase64(text.replace(/-/g, "+").replace(/_/g, "/"));
}

/** SHA-256 of a string's UTF-8, as base64. */
export async function sha256Base64(text: string): Promise<string> {
  return toBase64(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))));
}
