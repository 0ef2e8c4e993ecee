/**
 * The function's database login, `sigyl_api`, on the migrated schema: every helper in
 * `private` that authenticated or service_role may execute starts with the session guard
 * (`perform private.require_api_session();`), so a helper added later without it fails here,
 * naming it; the policy and check helpers, which RLS and constraints call for REST reads too,
 * are the only exceptions. What sigyl_api may execute by name is exactly what the function
 * calls as its own login. On PostgreSQL, the app's own connection logs in as sigyl_api.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../../shared/db/database.ts";
import { openTestDatabases } from "../helpers/harness.ts";
import { describeOrSkip, needsPostgres } from "../helpers/skip.ts";

/** Called by RLS policies and check constraints, so PostgREST's reads must keep reaching them. */
const POLICY_HELPERS = [
  "private.caller_permission(uuid)",
  "private.permission_rank(text)",
  "private.shared_secret_ids(secret_permission)",
  "private.tags_are_valid(text[])",
];

/** The guard as the first statement of the body (after compiler options and declarations). */
const GUARDED = /^\s*(?:#[^\n]*\n\s*)*(?:declare\b[\s\S]*?)?\bbegin\s+perform\s+private\.require_api_session\(\)\s*;/i;

interface Helper {
  fn: string;
  language: string;
  source: string;
}

/** Functions in `private`, not triggers, that authenticated or service_role may execute. */
const callableByApiRoles = (db: Database) =>
  db.query<Helper>(
    `select p.oid::regprocedure::text as fn, l.lanname::text as language, p.prosrc as source
       from pg_proc p
       join pg_namespace n on n.oid = p.pronamespace
       join pg_language l on l.oid = p.prolang
      where n.nspname = 'private' and p.prorettype <> 'trigger'::regtype
        and (has_function_privilege('authenticated', p.oid, 'EXECUTE')
             or has_function_privilege('service_role', p.oid, 'EXECUTE'))
      order by 1`,
  );

function unguarded(helpers: Helper[]): string[] {
  return helpers
    .filter((h) => !POLICY_HELPERS.includes(h.fn))
    .filter((h) => h.language !== "plpgsql" || !GUARDED.test(h.source))
    .map((h) => h.fn);
}

describe("the API role on the migrated schema", () => {
  let dbs: Awaited<ReturnType<typeof openTestDatabases>>;
  beforeAll(async () => {
    dbs = await openTestDatabases();
  });
  afterAll(async () => {
    await dbs?.api.close();
    await dbs?.owner.close();
  });

  it("every private helper authenticated or service_role may execute runs the session guard first", async () => {
    const helpers = await callableByApiRoles(dbs.owner);
    expect(helpers.map((h) => h.fn)).toEqual(expect.arrayContaining(["private.read_value(uuid,integer)", ...POLICY_HELPERS]));
    expect(unguarded(helpers), "add `perform private.require_api_session();` as the first statement of these").toEqual([]);
  });

  it("the check itself: a helper whose first statement is anything else, or a SQL helper, is reported", () => {
    const body = (first: string) => `\n#variable_conflict use_column\ndeclare\n  x int := 1;\nbegin\n  ${first}\n  return;\nend\n`;
    expect(unguarded([
      { fn: "private.ok()", language: "plpgsql", source: body("perform private.require_api_session();") },
      { fn: "private.late()", language: "plpgsql", source: body("perform 1;\n  perform private.require_api_session();") },
      { fn: "private.none()", language: "plpgsql", source: body("perform 1;") },
      { fn: "private.sql()", language: "sql", source: "select private.require_api_session()" },
      { fn: "private.permission_rank(text)", language: "sql", source: "select 1" },
    ])).toEqual(["private.late()", "private.none()", "private.sql()"]);
  });

  it("sigyl_api may execute by name only what the function calls as its login, and owns nothing", async () => {
    const own = await dbs.owner.query<{ fn: string }>(
      `select p.oid::regprocedure::text as fn from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'private' and has_function_privilege('sigyl_api', p.oid, 'EXECUTE')
          and not has_function_privilege('authenticated', p.oid, 'EXECUTE')
          and not has_function_privilege('service_role', p.oid, 'EXECUTE')
        order by 1`,
    );
    expect(own.map((r) => r.fn)).toEqual([
      "private.begin_key_rotation()",
      "private.deployment_of_token(bytea)",
      "private.finish_key_rotation()",
      "private.health_probe(text[])",
      "private.key_status()",
      "private.load_keyring()",
      "private.retire_key(integer)",
      "private.rewrap_batch_source(integer,uuid,integer)",
      "private.rewrap_remaining()",
      "private.store_rewrapped(integer,jsonb)",
    ]);
    const [{ owned }] = await dbs.owner.query<{ owned: number }>(
      `select ((select count(*) from pg_class where relowner = 'sigyl_api'::regrole)
             + (select count(*) from pg_proc where proowner = 'sigyl_api'::regrole)
             + (select count(*) from pg_namespace where nspowner = 'sigyl_api'::regrole))::int as owned`,
    );
    expect(owned).toBe(0);
  });

  it("the app's connection acts as sigyl_api, and as that role cannot switch off a trigger", async () => {
    const [{ role }] = await dbs.api.query<{ role: string }>(`select current_user::text as role`);
    expect(role).toBe("sigyl_api");
    await expect(dbs.api.query(`alter table public.secret_access_logs disable trigger all`)).rejects.toThrow(/must be owner/);
    await expect(dbs.api.query(`set session_replication_role = replica`)).rejects.toThrow(/permission denied/);
  });
});

describeOrSkip("the session guard on PostgreSQL", needsPostgres, () => {
  it("a login that is not sigyl_api (PostgREST's authenticator) gets api_role_required from the helpers; sigyl_api does not", async () => {
    const dbs = await openTestDatabases();
    try {
      const [{ session }] = await dbs.api.query<{ session: string }>(`select session_user::text as session`);
      expect(session).toBe("sigyl_api");
      const read = `select outcome from private.read_value(gen_random_uuid())`;
      const asUser = (tx: Database | { query: Database["query"] }) =>
        tx.query(`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{"role":"authenticated"}', true)`);
      const outcome = await dbs.api.transaction(async (tx) => {
        await asUser(tx);
        return (await tx.query<{ outcome: string }>(read))[0].outcome;
      });
      expect(outcome).toBe("secret_not_found");

      // The owner lends authenticator's login to this transaction only.
      const refused = dbs.owner.transaction(async (tx) => {
        await tx.query(`set local session authorization authenticator`);
        await asUser(tx);
        return await tx.query(read);
      });
      await expect(refused).rejects.toMatchObject({ code: "S0500", message: "api_role_required" });
    } finally {
      await dbs.api.close();
      await dbs.owner.close();
    }
  });
});
