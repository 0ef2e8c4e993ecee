import { z } from "zod";
import { decimalInt, isoDate, uuid } from "../http/validation.ts";

const AUDIT_ACTIONS = [
  "created", "accessed", "updated", "rotated", "deleted", "restored", "purged", "shared", "unshared",
  "expired", "denied", "key_rotated", "bound", "unbound",
] as const;

export const auditQuery = z.strictObject({
  action: z.enum(AUDIT_ACTIONS).optional(),
  secretId: uuid.optional(),
  since: isoDate.optional(),
  until: isoDate.optional(),
  cursor: z.string().regex(/^\d{1,19}$/, "a cursor this API returned").optional(),
  limit: decimalInt(1, 200).default(50),
});
export type AuditQuery = z.infer<typeof auditQuery>;

export interface AuditEntryDto {
  id: string;
  secretId: string | null;
  secretName: string | null;
  actorId: string | null;
  actorType: string;
  action: string;
  version: number | null;
  deploymentId: string | null;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  outcome: string;
  details: Record<string, unknown>;
  createdAt: string;
}
