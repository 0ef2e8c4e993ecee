/**
 * `sigyl login`, `logout` and `whoami`. A token is taken from stdin or a no-echo prompt, never
 * from an argument; with `--email`, the password likewise, and the session (its refresh token
 * too) is stored so that later commands refresh it when it expires. The config file is the
 * user's alone (0600, in a 0700 directory).
 */
import { Command } from "commander";
import { type SigylClient, unwrap } from "../../shared/client/client.ts";
import { createSigylClient } from "../../shared/client/client.ts";
import { DEFAULT_URL, normaliseUrl, readStoredConfig, removeStoredConfig, type StoredConfig, writeStoredConfig } from "../config.ts";
import { CliError, EXIT, usageError } from "../errors.ts";
import { note, print, printJson, readSecretInput } from "../io.ts";
import { authClient, authFailure, claimsOf, sessionFields } from "../session.ts";
import { sessionOf } from "./common.ts";

/** Who a token says it is, without verifying it (the API does that). */
export function describeToken(token: string) {
  if (token.startsWith("sb_secret_")) return { kind: "service role (secret key)" } as const;
  if (token.startsWith("sgd_")) return { kind: "deployment token" } as const;
  const claims = claimsOf(token);
  if (!claims) return { kind: "unknown token" } as const;
  const expiresAt = typeof claims.exp === "number" ? new Date(claims.exp * 1000).toISOString() : undefined;
  if (claims.role === "service_role") return { kind: "service role (JWT)", expiresAt } as const;
  return {
    kind: "user",
    email: typeof claims.email === "string" ? claims.email : undefined,
    userId: typeof claims.sub === "string" ? claims.sub : undefined,
    expiresAt,
  } as const;
}

/** One cheap call any user or the service role may make: proves the API takes the token. */
const checkToken = (api: SigylClient) => unwrap(api.GET("/secrets", { params: { query: { limit: "1" } } }));

export function loginCommand(): Command {
  return new Command("login")
    .description("store a credential for later commands: a token from stdin or a prompt, or --email to sign in with a password")
    .option("--email <email>", "sign in with this email and a password (read from stdin or a prompt)")
    .option("--apikey <key>", "with --email: the project's publishable key (npm start prints it); default SIGYL_APIKEY")
    .action(async (opts, cmd: Command) => {
      const session = await sessionOf(cmd);
      const url = session.url;
      let stored: StoredConfig;
      if (opts.email) {
        const apikey = opts.apikey ?? process.env.SIGYL_APIKEY;
        if (!apikey) throw usageError("--email needs the project's publishable key: --apikey or SIGYL_APIKEY");
        const password = await readSecretInput(`password for ${opts.email} (not echoed): `);
        const auth = await authClient(url, apikey);
        const { data, error } = await auth.auth.signInWithPassword({ email: opts.email, password });
        if (error || !data.session) throw error ? authFailure(error) : new CliError("no session", "unauthenticated", EXIT.auth);
        stored = { url, ...sessionFields(data.session), apikey, email: opts.email };
      } else {
        const token = (await readSecretInput("token (not echoed): ")).trim();
        if (token.startsWith("sgd_")) {
          throw usageError("a deployment token is not stored: hand it to sigyl run or sigyl env as SIGYL_DEPLOYMENT_TOKEN");
        }
        stored = { url, token };
      }
      await checkToken(createSigylClient({ url, token: stored.token, apikey: stored.apikey }));
      await writeStoredConfig(session.configPath, stored);
      const who = describeToken(stored.token!);
      note(`signed in at ${url} as ${"email" in who && who.email ? who.email : who.kind}; stored in ${session.configPath}`);
    });
}

export function logoutCommand(): Command {
  return new Command("logout")
    .description("forget the stored credential (and end a password sign-in's session)")
    .action(async (_opts, cmd: Command) => {
      const session = await sessionOf(cmd);
      const stored = await readStoredConfig(session.configPath);
      if (stored.refreshToken && stored.apikey && stored.token) {
        const auth = await authClient(normaliseUrl(stored.url ?? DEFAULT_URL), stored.apikey);
        const { error } = await auth.auth.admin.signOut(stored.token, "local");
        if (error) note(`sigyl: the session could not be ended on the server (${error.message}); forgetting it here`);
      }
      note(await removeStoredConfig(session.configPath) ? `removed ${session.configPath}` : "no stored credential");
    });
}

export function whoamiCommand(): Command {
  return new Command("whoami")
    .description("who the credential says it is, checked against the API")
    .option("--json", "print JSON")
    .action(async (opts, cmd: Command) => {
      const session = await sessionOf(cmd);
      const { token, origin } = await session.credential();
      const who = describeToken(token);
      if (who.kind === "deployment token") {
        throw usageError("a deployment token opens only its deployment's env: use it with sigyl run or sigyl env");
      }
      await checkToken(session.client());
      const answer = { ...who, url: session.url, source: origin, verified: true };
      if (opts.json) return printJson(answer);
      const name = "email" in who && who.email ? `${who.email} (${who.userId})` : who.kind;
      print(`${name} at ${session.url}`);
      note(`credential from ${origin}${who.expiresAt ? `, expires ${who.expiresAt}` : ""}; the API accepts it`);
    });
}
