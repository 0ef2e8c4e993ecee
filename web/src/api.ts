/**
 * The API as the console calls it: the project's one typed client (shared/client), with the
 * signed-in session's access token, and the messages a person reads for its errors.
 */
import type { SupabaseClient } from "@supabase/supabase-js";
import { createSigylClient, SigylApiError, type SigylClient, unwrap, type components } from "../../shared/client/client.ts";

export { SigylApiError, unwrap };
export type Api = SigylClient;
export type Secret = components["schemas"]["Secret"];
export type Version = components["schemas"]["Version"];
export type Grant = components["schemas"]["Grant"];
export type AuditEntry = components["schemas"]["AuditEntry"];
export type Binding = components["schemas"]["Binding"];
export type Problem = components["schemas"]["Problem"];
export type Level = Secret["permission"];

/**
 * The client for `<project>/functions/v1`; `onUnauthenticated` runs when the API refuses the
 * session (it ended elsewhere, or cannot be refreshed), so the console asks to sign in again.
 */
export function createApi(projectUrl: string, supabase: SupabaseClient, onUnauthenticated: () => void): Api {
  const api = createSigylClient({
    url: `${projectUrl}/functions/v1`,
    token: async () => (await supabase.auth.getSession()).data.session?.access_token,
  });
  api.use({
    onResponse({ response }) {
      if (response.status === 401) onUnauthenticated();
      return response;
    },
  });
  return api;
}

/** What a person is told for a failed call. */
export function describeError(err: unknown): string {
  if (err instanceof SigylApiError) {
    switch (err.code) {
      case "secret_not_found": return "This secret does not exist, or it is not shared with you.";
      case "forbidden": return "Your access level does not allow this.";
      case "secret_deleted": return "This secret is deleted.";
      case "secret_expired": return "This secret has expired.";
      case "secret_inactive": return "This secret is switched off.";
      case "deployment_not_found": return "No such deployment, or it is not yours.";
      case "database_unavailable": return "The service cannot reach its database right now. Try again.";
      case "unauthenticated": return "Your session has ended. Sign in again.";
      default: return err.message;
    }
  }
  if (err instanceof TypeError) return "The service did not answer. Check your connection and try again.";
  return err instanceof Error ? err.message : String(err);
}

/** The levels, weakest first, each said in words. */
export const LEVELS = [
  { level: "use", words: "can deploy with it, never see it" },
  { level: "read", words: "can see the value" },
  { level: "write", words: "can see and change the value and details" },
  { level: "admin", words: "can also share, delete and read its audit trail" },
] as const;
const RANK: Record<Level, number> = { use: 1, read: 2, write: 3, admin: 4, owner: 5 };
export const atLeast = (level: Level | undefined, min: Level) => level !== undefined && RANK[level] >= RANK[min];
export const levelWords = (level: Level) =>
  level === "owner" ? "owner: everything, including sharing and deleting" : `${level}: ${LEVELS.find((l) => l.level === level)!.words}`;
