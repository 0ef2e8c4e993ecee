-- Scheduled jobs. pg_cron runs them where it exists; elsewhere the local server calls
-- private.run_scheduled_jobs() on a timer, so the behaviour is the same.

-- Switches off every live secret whose expiry has passed. The audit trigger records one
-- 'expired' row per secret (the job runs with no caller claims: actor type 'system').
create or replace function private.deactivate_expired_secrets() returns int
language plpgsql security definer set search_path = ''
as $$
declare
  n int;
begin
  update public.secrets set is_active = false, updated_at = now()
   where is_active and deleted_at is null and expires_at <= now();
  get diagnostics n = row_count;
  return n;
end
$$;

create or replace function private.run_scheduled_jobs() returns jsonb
language plpgsql security definer set search_path = ''
as $$
begin
  return jsonb_build_object('expired', private.deactivate_expired_secrets());
end
$$;

revoke all on function private.deactivate_expired_secrets(), private.run_scheduled_jobs()
  from public, anon, authenticated, service_role;

-- Scheduled by name, so re-running the migration updates the job instead of adding one.
do $schedule$
begin
  if exists (select 1 from pg_extension where extname = 'pg_cron') then
    perform cron.schedule('sigyl-expire-secrets', '* * * * *', 'select private.deactivate_expired_secrets()');
  end if;
end
$schedule$;
