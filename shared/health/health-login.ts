/**
 * Which database login the service acts as, as health reports it. The function is meant to
 * log in as `sigyl_api`, which owns nothing and cannot switch off triggers; as the owner
 * (hosted: `postgres` from `SUPABASE_DB_URL`) every request is still served, but a compromised
 * function could rewrite versions or erase audit rows. Health says so (degraded, 200).
 */
import { API_ROLE } from "../config.ts";

export interface LoginReport {
  login: string;
  /** What to do about it, when the login is not the API role. */
  fix?: string;
}

export function assessLogin(login: string): LoginReport {
  if (login === API_ROLE) return { login };
  return {
    login,
    fix: `log in as ${API_ROLE}: give it a password (alter role ${API_ROLE} with login password '…') and set ` +
      `DATABASE_URL to the transaction pooler URL with user ${API_ROLE} (README: Deploy)`,
  };
}
