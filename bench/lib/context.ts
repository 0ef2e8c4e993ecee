/**
 * What every scenario is handed: the running server (its origin, a setup client, the load
 * generator), the run's database, the mode, the users it acts as, and where it records its
 * rows. Scenarios read nothing else: no flags, no environment, no module state.
 */
import type { Database } from "../../shared/db/database.ts";
import { type LocalSigner, signServiceToken, signUserToken } from "../../scripts/lib/local.ts";
import type { Loader } from "./children.ts";
import { type Api, makeUsers } from "./fixtures.ts";
import type { Mode } from "./options.ts";
import type { Measure, Results } from "./results.ts";

export interface Participant {
  id: string;
  email: string;
  /** A user access token valid for the whole run. */
  token: string;
}

/** One user per role in the run, so no scenario's secrets show up in another's list. */
export interface Participants {
  reader: Participant;
  env: Participant;
  writer: Participant;
  scale: Participant;
  sharer: Participant;
  rotation: Participant;
}

export interface BenchContext {
  /** The bench server's origin (http://127.0.0.1:port); load paths start with FN. */
  origin: string;
  /** The bare floor server's origin (bench/floor-server.ts); its paths are /b1, /b1j, /b2j/:id. */
  floorOrigin: string;
  /** Setup calls to the function; the measured load is the loader's. */
  api: Api;
  loader: Loader;
  db: Database;
  /** The run's database as its owner (postgres), for processes the scenarios start themselves. */
  databaseUrl: string;
  /** SUPABASE_JWKS as both servers were given it: the public key of the run's ES256 signer. */
  jwks: string;
  mode: Mode;
  /** The run's tag, unique to its database, for fixture names. */
  tag: string;
  users: Participants;
  serviceToken: string;
  /** The master secret the bench server seals and opens seed-style values with. */
  seedMaster: string;
  results: Results;
  measure: Measure;
  log: (msg: string) => void;
}

export const auth = (token: string) => ({ authorization: `Bearer ${token}` });

const TOKEN_LIFETIME = { expiresInSeconds: 6 * 3600 };

/**
 * The run's users (made the way Supabase Auth would), each with an ES256 access token from
 * `signer` (as a hosted project's users have), and a service token (HS256, `jwtSecret`).
 */
export async function createParticipants(db: Database, tag: string, signer: LocalSigner, jwtSecret: string) {
  const roles = ["reader", "env", "writer", "scale", "sharer", "rotation"] as const;
  // The rotation user's address keeps its number: the rotation adds rotation-1 to rotation-49.
  const labels = roles.map((r) => (r === "rotation" ? "rotation-0" : r));
  const made = await makeUsers(db, labels.map((l) => `${l}-${tag}@bench.sigyl.dev`));
  const tokens = await Promise.all(made.map((u) => signUserToken(signer, u, TOKEN_LIFETIME)));
  const users = Object.fromEntries(roles.map((r, i) => [r, { ...made[i], token: tokens[i] }])) as unknown as Participants;
  return { users, serviceToken: await signServiceToken(jwtSecret, TOKEN_LIFETIME) };
}
