/**
 * The shapes of the local sign-in stand-in: the request bodies it reads (zod; fields it does
 * not use, such as `gotrue_meta_security` or `code_challenge`, are ignored as GoTrue ignores
 * what it does not need) and the user and session objects it answers with, in GoTrue's JSON.
 */
import { z } from "zod";
import type { AuthUserRow } from "./auth-dal.ts";

/** GoTrue reads absent and empty strings alike; a field of the wrong type is malformed JSON to it. */
const text = z.string().optional().default("");

/** POST /signup. */
export const SignupBody = z.object({
  email: text,
  phone: text,
  password: text,
  data: z.record(z.string(), z.unknown()).nullish().transform((d) => d ?? {}),
});

/** POST /token?grant_type=password. */
export const PasswordGrantBody = z.object({ email: text, phone: text, password: text });

/** POST /token?grant_type=refresh_token. */
export const RefreshTokenGrantBody = z.object({ refresh_token: text });

/** POST /logout?scope=… */
export const LogoutScope = z.enum(["global", "local", "others"]);

const timestamp = (d: Date | string | null) => (d === null ? undefined : new Date(d).toISOString());

/**
 * A user as GoTrue's models.User serialises it: unset timestamps left out, `confirmed_at`
 * following `email_confirmed_at`, and the email identity a password sign-up made.
 */
export function userJson(u: AuthUserRow) {
  const confirmedAt = timestamp(u.email_confirmed_at);
  const identities = u.encrypted_password
    ? [{
      identity_id: u.id,
      id: u.id,
      user_id: u.id,
      identity_data: { email: u.email, email_verified: confirmedAt !== undefined, phone_verified: false, sub: u.id },
      provider: "email",
      last_sign_in_at: timestamp(u.last_sign_in_at ?? u.created_at),
      created_at: timestamp(u.created_at),
      updated_at: timestamp(u.updated_at),
      email: u.email,
    }]
    : [];
  return {
    id: u.id,
    aud: u.aud ?? "authenticated",
    role: u.role ?? "authenticated",
    email: u.email,
    email_confirmed_at: confirmedAt,
    phone: "",
    confirmed_at: confirmedAt,
    last_sign_in_at: timestamp(u.last_sign_in_at),
    app_metadata: u.raw_app_meta_data ?? {},
    user_metadata: u.raw_user_meta_data ?? {},
    identities,
    created_at: timestamp(u.created_at),
    updated_at: timestamp(u.updated_at),
    is_anonymous: false,
  };
}

/** GoTrue's AccessTokenResponse: what sign-up, sign-in and refresh answer with. */
export interface SessionJson {
  access_token: string;
  token_type: "bearer";
  expires_in: number;
  expires_at: number;
  refresh_token: string;
  user: ReturnType<typeof userJson>;
}
