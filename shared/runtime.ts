/**
 * The composition root shared by the edge function and the local server: given config and
 * a database, it loads the keyring and builds the app.
 */
import { createApp, type Logger } from "./app.ts";
import { createAuthenticator } from "./auth/authenticate.ts";
import { type Clock, systemClock } from "./clock.ts";
import type { Config } from "./config.ts";
import { loadKeyringFromVault } from "./crypto/vault-keyring.ts";
import type { Keyring } from "./crypto/keyring.ts";
import type { Database } from "./db/database.ts";
import { deploymentTokenResolver } from "./deployments/deployment-token.ts";

export interface RuntimeOptions {
  config: Config;
  db: Database;
  clock?: Clock;
  log?: Logger;
  /**
   * This process runs the scheduled jobs on a timer where pg_cron is missing, as the local
   * server does; health reports who runs them. Defaults to true outside production (where
   * `npm start` serves) and false in production; the edge function says false itself.
   */
  localJobTimer?: boolean;
  /**
   * A keyring load already under way: the function entry starts it before it loads the app's
   * modules, so the connection and the Vault read overlap that loading. Read anew when absent.
   */
  keyring?: Promise<Keyring>;
}

export async function createRuntime(options: RuntimeOptions) {
  const clock = options.clock ?? systemClock;
  const keyring = await (options.keyring ?? loadKeyringFromVault(options.db));
  const authenticator = createAuthenticator(
    { ...options.config.auth, resolveDeploymentToken: deploymentTokenResolver(options.db) },
    clock,
  );
  const app = createApp({
    db: options.db, keyring, authenticator, clock, corsOrigins: options.config.corsOrigins,
    trustedProxyHops: options.config.trustedProxyHops, log: options.log,
    localJobTimer: options.localJobTimer ?? !options.config.production,
  });
  return { app, keyring, db: options.db, clock, authenticate: authenticator };
}
