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
