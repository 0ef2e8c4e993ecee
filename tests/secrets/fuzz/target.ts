/**
 * The secret a fuzz property runs against: owned by a fresh user, shared read-only with another,
 * and the state a rejected call must leave exactly as it was.
 */
import { expect } from "vitest";
import { type Harness, type Reply, snapshot, type TestUser } from "../../helpers/harness.ts";
import type { Payload } from "./oracle.ts";

export interface Target {
  owner: TestUser;
  grantee: TestUser;
  id: string;
  /** The current value, which no response may echo. */
  value: string;
  /** Sends a payload to `/secrets{path}` as the owner. */
  send(method: string, path: string, p: Payload, headers?: Record<string, string>): Promise<Reply>;
  /** Everything about the secret a rejected call must leave alone, audit rows included. */
  state(): Promise<string>;
  /** The owner's footprint, for create: rows it owns, their versions, audit rows naming it. */
  ownerState(): Promise<string>;
}

/** `secondVersion`: the value is replaced once; `deleted`: the secret is soft-deleted. */
export async function createTarget(h: Harness, opts: { deleted?: boolean; secondVersion?: boolean } = {}): Promise<Target> {
  const owner = await h.user("fuzz-owner");
  const grantee = await h.user("fuzz-grantee");
  const secret = await h.createSecret(owner, { description: "fuzz target", tags: ["fuzz", "target"] });
  await h.grant(owner, secret.id, grantee, "read");
  let value = secret.value;
  if (opts.secondVersion) {
    value = `fuzz-second-${crypto.randomUUID()}`;
    h.remember(value);
    const res = await h.request("PUT", `/${secret.id}/value`, { token: owner.token, body: { value } });
    expect(res.status).toBe(200);
  }
  if (opts.deleted) expect((await h.request("DELETE", `/${secret.id}`, { token: owner.token })).status).toBe(200);

  return {
    owner,
    grantee,
    id: secret.id,
    value,
    send(method, path, p, headers = {}) {
      const token = owner.token;
      if (p.kind === "none" || (p.kind === "json" && p.value === undefined)) return h.request(method, path, { token, headers });
      if (p.kind === "json") return h.request(method, path, { token, body: p.value, headers });
      return h.request(method, path, { token, rawBody: p.text, headers: { ...headers, "content-type": p.contentType } });
    },
    async state() {
      const [audit] = await h.db.query<{ n: number }>(
        `select count(*)::int as n from public.secret_access_logs where secret_id = $1::uuid`, [secret.id]);
      return `${await snapshot(h.db, secret.id)} audit=${audit.n}`;
    },
    async ownerState() {
      const [row] = await h.db.query(
        `select (select count(*)::int from public.secrets where user_id = $1::uuid) as secrets,
                (select count(*)::int from public.secret_versions v join public.secrets s on s.id = v.secret_id
                  where s.user_id = $1::uuid) as versions,
                (select count(*)::int from public.secret_access_logs where owner_id = $1::uuid or actor_id = $1::uuid) as audit`,
        [owner.id],
      );
      return JSON.stringify(row);
    },
  };
}
