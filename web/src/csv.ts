/**
 * CSV (RFC 4180) of audit rows. Cells a spreadsheet would run as a formula (starting with
 * = + - @, tab or CR) get a leading apostrophe: audit fields such as the user agent are set by
 * whoever made the request.
 */
import type { AuditEntry } from "./api.ts";

export const AUDIT_COLUMNS = [
  "createdAt", "action", "outcome", "secretId", "secretName", "version", "actorType", "actorId",
  "deploymentId", "ip", "userAgent", "requestId",
] as const satisfies readonly (keyof AuditEntry)[];

export function csvCell(value: unknown): string {
  let s = value === null || value === undefined ? "" : String(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function auditCsv(rows: AuditEntry[]): string {
  const lines = [AUDIT_COLUMNS.join(",")];
  for (const r of rows) lines.push(AUDIT_COLUMNS.map((c) => csvCell(r[c])).join(","));
  return lines.join("\r\n") + "\r\n";
}
