-- Foundation: the schema the REST API never exposes, and pg_cron where the server has it.

-- `private` holds security-definer helpers and the keyring. Supabase's REST API only
-- exposes the schemas listed in config.toml ([api] schemas = public, graphql_public), so
-- nothing here is reachable over REST even where a role may execute it. The function
-- acts as `authenticated` / `service_role` and calls these helpers inside its transaction.
create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;
comment on schema private is
  'Sigyl Secrets internals: security-definer helpers, keyring, jobs. Never exposed over REST.';

-- The function's own login, `sigyl_api`. The owner of every table (postgres) may
-- `set session_replication_role = replica` or `alter table … disable trigger` and then rewrite
-- versions or erase audit rows without a trace; a function logged in as the owner could too.
-- sigyl_api owns nothing and holds no table privilege of its own: it can only become
-- `authenticated` or `service_role` (set role, per transaction, as PostgREST does; NOINHERIT,
-- so outside that it has none of their rights) and execute what is granted to it by name
-- (the key helpers, the health probe). Triggers, RLS and the immutability of versions and of
-- the audit hold against it. Roles are cluster-wide, so it is created only where missing,
-- NOLOGIN and without a password: logging in is enabled outside the migrations (hosted:
-- `alter role sigyl_api with login password '…'` in the SQL editor, see the README; locally:
-- scripts/lib/local.ts). `postgres` is made a member so its own sessions (the SQL editor, a
-- function still on SUPABASE_DB_URL) pass private.require_api_session().
do $api_role$
begin
  if not exists (select 1 from pg_roles where rolname = 'sigyl_api') then
    create role sigyl_api nologin noinherit;
  end if;
  if exists (select 1 from pg_roles where rolname = 'sigyl_api'
               and (rolsuper or rolcreaterole or rolcreatedb or rolreplication or rolbypassrls)) then
    raise exception 'the role sigyl_api exists with powers the API must not have (superuser, createrole, createdb, replication or bypassrls)'
      using hint = 'drop it or remove those attributes, then re-run the migrations';
  end if;
  -- Every change below is made only where missing: roles are shared by every database of the
  -- cluster, and two databases migrating at once (the test suites do) would otherwise update
  -- the same catalog rows and fail with "tuple concurrently updated".
  if exists (select 1 from pg_roles where rolname = 'sigyl_api' and rolinherit) then
    alter role sigyl_api noinherit;
  end if;
  if not pg_has_role('sigyl_api', 'authenticated', 'member') then
    grant authenticated to sigyl_api;
  end if;
  if not pg_has_role('sigyl_api', 'service_role', 'member') then
    grant service_role to sigyl_api;
  end if;
  if exists (select 1 from pg_roles where rolname = 'postgres')
     and not pg_has_role('postgres', 'sigyl_api', 'member') then
    grant sigyl_api to postgres;
  end if;
exception when insufficient_privilege then
  raise exception 'cannot set up the database role sigyl_api: %', sqlerrm
    using hint = 'the migrations must run as a role with CREATEROLE that may grant authenticated and service_role (postgres on Supabase)';
end
$api_role$;
do $api_role_comment$
begin
  if shobj_description('sigyl_api'::regrole, 'pg_authid') is distinct from
     'Sigyl Secrets: the edge function''s login. Owns nothing; may set role authenticated/service_role and call the API helpers.' then
    comment on role sigyl_api is
      'Sigyl Secrets: the edge function''s login. Owns nothing; may set role authenticated/service_role and call the API helpers.';
  end if;
end
$api_role_comment$;
grant usage on schema private to sigyl_api;

-- The guard every helper callable by authenticated/service_role runs first: the session must
-- have logged in as sigyl_api (or a member: postgres, superusers). PostgREST logs in as
-- `authenticator` and switches to the same roles, so were `private` ever exposed over REST,
-- its callers would still be refused here. session_user is the login, whatever role or
-- security-definer function is current. A catalogue test fails for any such helper without it.
create or replace function private.require_api_session() returns void
language plpgsql stable set search_path = ''
as $$
begin
  if not pg_has_role(session_user, 'sigyl_api', 'MEMBER') then
    raise exception 'api_role_required' using errcode = 'S0500',
      detail = format('the session logged in as %I, which is not sigyl_api', session_user);
  end if;
end
$$;
comment on function private.require_api_session() is
  'Guard: refuses (api_role_required) a session that did not log in as sigyl_api or a member of it, e.g. PostgREST''s authenticator. First statement of every helper authenticated/service_role may execute.';
revoke all on function private.require_api_session() from public;

-- What GET /health reports, for a login that owns nothing: applied migrations, and pg_cron
-- with the named jobs (cron.job shows a role only its own jobs, and the migrations schedule
-- them as postgres). cron.job is read dynamically: it exists only where pg_cron does.
create or replace function private.health_probe(p_jobs text[])
returns table (migrations int, pg_cron boolean, jobs jsonb)
language plpgsql stable security definer set search_path = ''
as $$
begin
  migrations := (select count(*)::int from supabase_migrations.schema_migrations);
  pg_cron := exists (select 1 from pg_extension where extname = 'pg_cron') and to_regclass('cron.job') is not null;
  jobs := '[]'::jsonb;
  if pg_cron then
    execute 'select coalesce(jsonb_agg(jsonb_build_object(''name'', jobname, ''schedule'', schedule, ''active'', active)
                                       order by jobid), ''[]'') from cron.job where jobname = any($1)'
      into jobs using p_jobs;
  end if;
  return next;
end
$$;
comment on function private.health_probe(text[]) is
  'GET /health: applied migrations, pg_cron and the named jobs. Nothing secret; for sigyl_api (which cannot read cron.job''s rows of postgres) and the owner.';
revoke all on function private.health_probe(text[]) from public;
grant execute on function private.health_probe(text[]) to sigyl_api;

-- pg_cron exists on hosted Supabase and on CI's PostgreSQL (preloaded, pointed at this
-- database). Embedded PGlite and an unprepared local server lack it: there the local server
-- runs the same job functions on a timer (private.run_scheduled_jobs), so the migration
-- must still succeed.
do $cron$
begin
  if exists (select 1 from pg_available_extensions where name = 'pg_cron')
     and current_setting('cron.database_name', true) = current_database() then
    create extension if not exists pg_cron;
  else
    raise notice 'pg_cron is not available in this database; the server runs the jobs on a timer';
  end if;
exception when others then
  raise notice 'pg_cron could not be enabled (%); the server runs the jobs on a timer', sqlerrm;
end
$cron$;
