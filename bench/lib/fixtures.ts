/**
 * Data for the benchmark: small fixtures go through the real HTTP API (so they are sealed,
 * audited and shaped exactly as users make them); bulk rows are generated in SQL with
 * generate_series, as the connection owner, with `session_replication_role = replica` so the
 * row triggers (audit, immutability, KEK checks) and foreign-key triggers stay out of the
 * load. Their shapes are realistic: auth.users rows, secrets spread over owners, one version
 * each with valid-length blobs (iv 12 bytes, ciphertext 17–64, wrapped DEK 60), grants of
 * every level, and the 'created' audit row the trigger would have written.
 */
import { toBase64 as b64 } from "../../shared/bytes.ts";
import type { Database } from "../../shared/db/database.ts";
import { sealValue } from "../../shared/crypto/envelope.ts";
import type { Keyring } from "../../shared/crypto/keyring.ts";


/** A value shaped like an API key: printable, 40-odd characters, unique. */
export function randomValue(prefix = "sk-bench"): string {
  return `${prefix}-${b64(crypto.getRandomValues(new Uint8Array(24))).replace(/[+/=]/g, "x")}`;
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export interface Api {
  call<T = unknown>(method: string, path: string, token: string, body?: unknown): Promise<T>;
  createSecret(token: string, name: string, value: string): Promise<{ id: string }>;
}

/** A small client of the function's API (setup only; the measured load is autocannon's). */
export function createApi(base: string): Api {
  async function call<T>(method: string, path: string, token: string, body?: unknown): Promise<T> {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(120_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
    return JSON.parse(text).data as T;
  }
  return {
    call,
    createSecret: (token, name, value) => call("POST", "", token, { name, value, secretType: "api_key" }),
  };
}

/** Bulk loads run as the owner with row triggers off (superuser: the driver created the database). */
async function bulk(db: Database, statements: { sql: string; params: unknown[] }[]) {
  await db.transaction(async (tx) => {
    await tx.query(`set local session_replication_role = replica`);
    for (const s of statements) await tx.query(s.sql, s.params);
  });
}

/** Deterministic ids (md5 of a run tag and a number) let one statement refer to another's rows. */
const USER_ID = (tag: string, expr: string) => `md5('${tag}-user-' || (${expr}))::uuid`;
const SECRET_ID = (tag: string, expr: string) => `md5('${tag}-secret-' || (${expr}))::uuid`;

/**
 * Grows the "other tenants" population to `users` users, `secrets` secrets (one version each,
 * owner = secret number mod users) and about `grants` grants (grant g: secret 5g to a user
 * other than its owner). Call with growing targets; each call adds only what is missing.
 */
export async function growPopulation(
  db: Database,
  tag: string,
  have: { users: number; secrets: number; grants: number },
  want: { users: number; secrets: number; grants: number },
  kekVersion: number,
  onStep: (what: string) => void = () => {},
) {
  if (!/^[a-z0-9]+$/.test(tag)) throw new Error("bad tag");
  const chunk = 250_000;
  if (want.users > have.users) {
    onStep(`users ${have.users + 1}..${want.users}`);
    await bulk(db, [{
      sql: `insert into auth.users (id, aud, role, email, created_at, updated_at)
            select ${USER_ID(tag, "j")}, 'authenticated', 'authenticated', 'bulk-' || j || '-${tag}@bench.sigyl.dev', now(), now()
              from generate_series($1::int, $2::int) j`,
      params: [have.users, want.users - 1],
    }]);
  }
  for (let from = have.secrets + 1; from <= want.secrets; from += chunk) {
    const to = Math.min(want.secrets, from + chunk - 1);
    onStep(`secrets ${from}..${to}`);
    const owner = USER_ID(tag, `i % ${want.users}`);
    await bulk(db, [
      {
        sql: `insert into public.secrets (id, user_id, name, secret_type, description, tags, current_version, created_at, updated_at)
              select ${SECRET_ID(tag, "i")}, ${owner}, 'BULK_' || i,
                     (array['api_key', 'database_url', 'jwt_secret', 'custom']::public.secret_type[])[1 + i % 4],
                     '', case when i % 3 = 0 then array['prod'] else '{}'::text[] end, 1, now(), now()
                from generate_series($1::int, $2::int) i`,
        params: [from, to],
      },
      {
        sql: `insert into public.secret_versions (secret_id, version, iv, ciphertext, wrapped_dek, kek_version, created_by)
              select ${SECRET_ID(tag, "i")}, 1, extensions.gen_random_bytes(12), extensions.gen_random_bytes(17 + i % 48),
                     extensions.gen_random_bytes(60), $3::int, ${owner}
                from generate_series($1::int, $2::int) i`,
        params: [from, to, kekVersion],
      },
      {
        sql: `insert into public.secret_access_logs (secret_id, secret_name, owner_id, actor_id, actor_type, action, version, details)
              select ${SECRET_ID(tag, "i")}, 'BULK_' || i, ${owner}, ${owner}, 'user', 'created', 1, '{"secretType":"api_key"}'
                from generate_series($1::int, $2::int) i`,
        params: [from, to],
      },
    ]);
  }
  if (want.grants > have.grants) {
    onStep(`grants ${have.grants + 1}..${want.grants}`);
    const grantee = USER_ID(tag, `(g * 7919) % ${want.users}`);
    await bulk(db, [{
      sql: `insert into public.secret_permissions (secret_id, user_id, permission, granted_by)
            select s.id, ${grantee}, (array['use', 'read', 'write', 'admin']::public.secret_permission[])[1 + g % 4], s.user_id
              from generate_series($1::int, $2::int) g
              join public.secrets s on s.id = ${SECRET_ID(tag, "g * 5")}
             where ${grantee} <> s.user_id`,
      params: [have.grants + 1, want.grants],
    }]);
  }
}

/**
 * Seals `secrets × versionsPerSecret` real versions with the envelope code (fresh DEK each,
 * wrapped by the active KEK of `keyring`) and inserts them in batches. Returns the secret
 * ids, in order; secret i belongs to owners[i % owners.length].
 */
export async function sealRealVersions(
  db: Database,
  keyring: Keyring,
  options: { owners: string[]; secrets: number; versionsPerSecret: number; namePrefix: string },
  onProgress: (done: number) => void = () => {},
): Promise<string[]> {
  const ids: string[] = [];
  const batch = 1000;
  for (let from = 0; from < options.secrets; from += batch) {
    const count = Math.min(batch, options.secrets - from);
    const secrets = Array.from({ length: count }, (_, k) => ({
      id: crypto.randomUUID(),
      owner: options.owners[(from + k) % options.owners.length],
      name: `${options.namePrefix}_${from + k}`,
    }));
    const versions = await Promise.all(secrets.flatMap((s) =>
      Array.from({ length: options.versionsPerSecret }, async (_, v) => {
        const sealed = await sealValue(keyring, s.id, v + 1, randomValue("rot"));
        return {
          s: s.id, v: v + 1, o: s.owner, k: sealed.kekVersion,
          iv: b64(sealed.iv), ct: b64(sealed.ciphertext), dek: b64(sealed.wrappedDek),
        };
      })
    ));
    await bulk(db, [
      {
        sql: `insert into public.secrets (id, user_id, name, secret_type, current_version)
              select r.id, r.owner, r.name, 'api_key', $2::int
                from jsonb_to_recordset($1::text::jsonb) as r (id uuid, owner uuid, name text)`,
        params: [JSON.stringify(secrets), options.versionsPerSecret],
      },
      {
        sql: `insert into public.secret_versions (secret_id, version, iv, ciphertext, wrapped_dek, kek_version, created_by)
              select r.s, r.v, decode(r.iv, 'base64'), decode(r.ct, 'base64'), decode(r.dek, 'base64'), r.k, r.o
                from jsonb_to_recordset($1::text::jsonb) as r (s uuid, v int, iv text, ct text, dek text, k int, o uuid)`,
        params: [JSON.stringify(versions)],
      },
    ]);
    ids.push(...secrets.map((s) => s.id));
    onProgress(ids.length * options.versionsPerSecret);
  }
  return ids;
}

/** Users made the way Supabase Auth would (one row each), in one statement. */
export async function makeUsers(db: Database, emails: string[]): Promise<{ id: string; email: string }[]> {
  return await db.query<{ id: string; email: string }>(
    `insert into auth.users (email, aud, role)
     select e, 'authenticated', 'authenticated' from jsonb_array_elements_text($1::text::jsonb) e
     returning id, email::text`,
    [JSON.stringify(emails)],
  );
}
