-- Scheduled jobs: expiry, purge of deleted secrets after the recovery window, and trimming
-- pg_cron's own history. pg_cron runs them where it exists; elsewhere the local server calls
-- private.run_scheduled_jobs() on a timer, so the behaviour is the same. Each job takes the
-- time as a parameter (default now()) so tests can run them at any instant.

create table if not exists private.settings (
  id boolean primary key default true check (id),
  deleted_retention interval not null default interval '7 days' check (deleted_retention >= interval '0'),
  job_history_retention interval not null default interval '7 days' check (job_history_retention >= interval '1 hour'),
  job_batch_size int not null default 1000 check (job_batch_size >= 1)
);
comment on table private.settings is
  'Operator settings (one row). Change with: update private.settings set deleted_retention = interval ''30 days'';';
comment on column private.settings.deleted_retention is
  'How long a deleted secret stays restorable before the purge job removes it (its audit rows stay).';
comment on column private.settings.job_history_retention is 'How long cron.job_run_details keeps the runs of our jobs.';
comment on column private.settings.job_batch_size is
  'At most this many secrets per run of the expiry job (every minute) and of the purge job (hourly); the rest waits for the next run.';
insert into private.settings (id) values (true) on conflict (id) do nothing;
revoke all on private.settings from public, anon, authenticated, service_role;

-- Switches off live secrets whose expiry has passed, one bounded batch per run. The audit
-- trigger records one 'expired' row per secret (the job runs with no caller claims: actor
-- type 'system'). One batch, not a loop of them: a call is one transaction, so looping would
-- not shorten what it holds; the run every minute drains job_batch_size a minute, oldest
-- expiry first. Rows a writer holds are skipped (SKIP LOCKED) and taken by a later run.
create or replace function private.deactivate_expired_secrets(p_now timestamptz default now()) returns int
language plpgsql security definer set search_path = ''
as $$
declare
  n int;
begin
  perform set_config('sigyl.job_now', p_now::text, true);
  with due as (
    select s.id from public.secrets s
     where s.is_active and s.deleted_at is null and s.expires_at <= p_now
     order by s.expires_at
     limit (select job_batch_size from private.settings)
     for update skip locked)
  update public.secrets s set is_active = false, updated_at = p_now
    from due where s.id = due.id;
  get diagnostics n = row_count;
  return n;
end
$$;
comment on function private.deactivate_expired_secrets(timestamptz) is
  'Job: switches off live secrets whose expiry has passed, so listings show them inactive without waiting for a read; each gets one expired audit row. One batch of at most private.settings.job_batch_size per call (oldest expiry first, locked rows skipped), as its transaction stays bounded; the job runs every minute, so a backlog drains over the next runs.';

-- Removes deleted secrets whose recovery window has passed, with their versions, grants and
-- bindings (cascade), one bounded batch per run, oldest deletion first, as the expiry job
-- does. The audit trigger records 'purged'; earlier audit rows stay.
create or replace function private.purge_deleted_secrets(p_now timestamptz default now()) returns int
language plpgsql security definer set search_path = ''
as $$
declare
  n int;
begin
  with due as (
    select s.id from public.secrets s
     where s.deleted_at is not null
       and s.deleted_at <= p_now - (select deleted_retention from private.settings)
     order by s.deleted_at
     limit (select job_batch_size from private.settings)
     for update skip locked)
  delete from public.secrets s using due where s.id = due.id;
  get diagnostics n = row_count;
  return n;
end
$$;
comment on function private.purge_deleted_secrets(timestamptz) is
  'Job: removes deleted secrets past the recovery window, with their versions, grants and bindings; their audit rows stay. One batch of at most private.settings.job_batch_size per call (oldest deletion first, locked rows skipped), so a run''s cascade stays bounded; the job runs hourly, so a larger backlog drains over the next hours (or call it again).';

-- Keeps cron.job_run_details from growing without bound (it records every run). Only the
-- runs of our jobs (named sigyl-…): on a shared database (hosted) other jobs' history is
-- theirs to keep. Dynamic SQL, as `cron` exists only where pg_cron is installed.
create or replace function private.trim_job_history(p_now timestamptz default now()) returns int
language plpgsql security definer set search_path = ''
as $$
declare
  n int := 0;
begin
  if to_regclass('cron.job_run_details') is not null and to_regclass('cron.job') is not null then
    execute $sql$
      delete from cron.job_run_details d
       where d.end_time < $1
         and d.jobid in (select j.jobid from cron.job j where j.jobname like 'sigyl-%')$sql$
      using p_now - (select job_history_retention from private.settings);
    get diagnostics n = row_count;
  end if;
  return n;
end
$$;
comment on function private.trim_job_history(timestamptz) is
  'Job: deletes the pg_cron run history of our jobs (named sigyl-…) older than job_history_retention, which would otherwise grow without bound; other jobs'' history is left alone.';

create or replace function private.run_scheduled_jobs(p_now timestamptz default now()) returns jsonb
language plpgsql security definer set search_path = ''
as $$
begin
  return jsonb_build_object(
    'expired', private.deactivate_expired_secrets(p_now),
    'purged', private.purge_deleted_secrets(p_now),
    'trimmed', private.trim_job_history(p_now),
    'idempotency_purged', private.purge_idempotency_keys(p_now));
end
$$;
comment on function private.run_scheduled_jobs(timestamptz) is
  'Every job in one call, for servers without pg_cron (the local server calls it on a timer), so behaviour matches hosted.';

revoke all on function private.deactivate_expired_secrets(timestamptz), private.purge_deleted_secrets(timestamptz),
  private.trim_job_history(timestamptz), private.run_scheduled_jobs(timestamptz)
  from public, anon, authenticated, service_role;

-- Schedules the jobs with pg_cron, by name, so calling it again updates them instead of
-- adding more. For a database that got pg_cron after this migration ran: enable pg_cron,
-- then `select private.schedule_jobs();`.
create or replace function private.schedule_jobs() returns text[]
language plpgsql volatile security definer set search_path = ''
as $$
begin
  if not exists (select 1 from pg_extension where extname = 'pg_cron') then
    raise exception 'pg_cron is not enabled in database %', current_database()
      using hint = 'Enable pg_cron (Supabase dashboard: Database > Extensions > pg_cron; or create extension pg_cron), then select private.schedule_jobs();';
  end if;
  perform cron.schedule('sigyl-expire-secrets', '* * * * *', 'select private.deactivate_expired_secrets()');
  perform cron.schedule('sigyl-purge-deleted', '17 * * * *', 'select private.purge_deleted_secrets()');
  perform cron.schedule('sigyl-trim-job-history', '27 3 * * *', 'select private.trim_job_history()');
  -- Defined in 20261128160900_idempotency.sql; pg_cron resolves the command when it runs.
  perform cron.schedule('sigyl-purge-idempotency', '* * * * *', 'select private.purge_idempotency_keys()');
  return array['sigyl-expire-secrets', 'sigyl-purge-deleted', 'sigyl-trim-job-history', 'sigyl-purge-idempotency'];
end
$$;
comment on function private.schedule_jobs() is
  'Schedules (or reschedules) the expiry, purge, history-trim and idempotency-key purge jobs with pg_cron, by name; fails naming the fix when pg_cron is not enabled. Owner only.';
revoke all on function private.schedule_jobs() from public, anon, authenticated, service_role;

-- Where pg_cron is meant to run these jobs and cannot, the push fails with the fix in its
-- message: `supabase db push` prints a failing statement's error and detail, and nothing of a
-- NOTICE or WARNING. Re-running the push resumes here. pg_cron is meant to run them where
-- the server preloads it for this database, as hosted Supabase does for `postgres`; where
-- it does not (PGlite, a local server prepared otherwise), the local server runs
-- private.run_scheduled_jobs() on a timer instead, and the push goes on with a warning
-- (shown by psql).
do $schedule$
declare
  cron_database text := (select setting from pg_settings where name = 'cron.database_name');
begin
  if exists (select 1 from pg_extension where extname = 'pg_cron') then
    begin
      perform private.schedule_jobs();
    exception when others then
      raise exception 'Scheduling the Sigyl jobs with pg_cron failed (%). Fix that, then re-run supabase db push', sqlerrm
        using detail = 'Without these jobs expired secrets stay active in listings and deleted secrets are never purged.';
    end;
  elsif cron_database = current_database() then
    raise exception 'pg_cron is not enabled in database %. Enable it (Supabase dashboard: Database > Extensions > pg_cron), then re-run supabase db push', current_database()
      using detail = 'The Sigyl jobs (expiry, purge of deleted secrets, history trim) run with pg_cron; without it they never run.';
  else
    raise warning 'pg_cron does not run in database %: the Sigyl jobs are not scheduled', current_database()
      using detail = 'The local server (npm start) runs them on a timer instead; nothing else does.',
            hint = 'Where pg_cron should run them: enable pg_cron, then select private.schedule_jobs();';
  end if;
end
$schedule$;
