-- The jobs stay bounded and keep to their own: expiry and purge take at most
-- private.settings.job_batch_size secrets per run (oldest first), each expired secret still
-- gets exactly one 'expired' row, and the history trim deletes only the pg_cron runs of our
-- jobs (named sigyl-…), never another team's. Where pg_cron is not installed the trim is
-- tested against a stand-in `cron` schema of the same shape, created and dropped with this
-- transaction.
BEGIN;
set local search_path = public, extensions;
select plan(22);

select tests.create_user('alice@example.com') as alice \gset
select tests.create_secret_as(:'alice', 'EXP_A') as exp_a \gset
select tests.create_secret_as(:'alice', 'EXP_B') as exp_b \gset
select tests.create_secret_as(:'alice', 'EXP_C') as exp_c \gset
select tests.create_secret_as(:'alice', 'DEL_A') as del_a \gset
select tests.create_secret_as(:'alice', 'DEL_B') as del_b \gset
select tests.create_secret_as(:'alice', 'DEL_C') as del_c \gset
select tests.clear_authentication();

-- The setting ------------------------------------------------------------------------------

select is((select job_batch_size from private.settings), 1000, 'the batch size defaults to 1000');
select throws_ok('update private.settings set job_batch_size = 0', '23514', null, 'a batch size below 1 is refused');
update private.settings set job_batch_size = 2;

-- Expiry, two per run, oldest expiry first ---------------------------------------------------

update public.secrets set expires_at = timestamptz '2000-01-01' + (name = 'EXP_C')::int * interval '1 day'
 where id in (:'exp_a', :'exp_b', :'exp_c');

select is(private.deactivate_expired_secrets(), 2, 'the first run switches off one batch: two secrets');
select is((select count(*)::int from public.secrets where id in (:'exp_a', :'exp_b', :'exp_c') and not is_active), 2,
  'two of the three are inactive');
select is((select is_active from public.secrets where id = :'exp_c'), true,
  'the one that expired last waits for the next run');
select is(private.deactivate_expired_secrets(), 1, 'the next run switches off the rest');
select is(private.deactivate_expired_secrets(), 0, 'and a third finds nothing');
select results_eq(
  format($$select count(*)::int from public.secret_access_logs where secret_id in (%L, %L, %L) and action = 'expired'
           group by secret_id order by 1$$, :'exp_a', :'exp_b', :'exp_c'),
  $$values (1), (1), (1)$$,
  'each secret has exactly one expired row across the runs');

-- Purge, two per run, oldest deletion first --------------------------------------------------

update public.secrets set deleted_at = timestamptz '2000-01-01' + (name = 'DEL_C')::int * interval '1 day'
 where id in (:'del_a', :'del_b', :'del_c');

select is(private.purge_deleted_secrets(), 2, 'the first purge removes one batch: two secrets');
select is((select count(*)::int from public.secrets where id in (:'del_a', :'del_b', :'del_c')), 1, 'one is left');
select ok(exists (select 1 from public.secrets where id = :'del_c'), 'the one deleted last waits for the next run');
select is(private.purge_deleted_secrets(), 1, 'the next purge removes it');
select is(private.purge_deleted_secrets(), 0, 'and a third finds nothing');
select results_eq(
  format($$select count(*)::int from public.secret_access_logs where secret_id in (%L, %L, %L) and action = 'purged'
           group by secret_id order by 1$$, :'del_a', :'del_b', :'del_c'),
  $$values (1), (1), (1)$$,
  'each purged secret has exactly one purged row');
select is(private.purge_deleted_secrets(), 0, 'nothing inside the recovery window is purged');

-- Trimming pg_cron's history: ours only --------------------------------------------------------

select ok(to_regclass('cron.job_run_details') is not null or to_regnamespace('cron') is null,
  'either pg_cron is installed or there is no cron schema the stand-in could clash with');
do $standin$
begin
  if to_regclass('cron.job_run_details') is null then
    create schema cron;
    create table cron.job (
      jobid bigserial primary key, schedule text not null, command text not null,
      jobname text, username text not null default current_user);
    create table cron.job_run_details (
      runid bigserial primary key, jobid bigint, job_pid int, database text, username text,
      command text, status text, return_message text, start_time timestamptz, end_time timestamptz);
  end if;
end
$standin$;

insert into cron.job (schedule, command, jobname)
select '* * * * *', 'select 1', n
  from unnest(array['sigyl-expire-secrets', 'other-team-nightly', 'not-sigyl-backup']) n
 where not exists (select 1 from cron.job j where j.jobname = n);
insert into cron.job_run_details (jobid, job_pid, database, username, command, status, return_message, start_time, end_time)
select j.jobid, 0, current_database(), current_user, 'select 1', 'succeeded', 'trim-test ' || j.jobname || ' ' || age,
       now() - a.ago, now() - a.ago
  from cron.job j
 cross join (values ('old', interval '30 days'), ('recent', interval '1 hour')) a(age, ago)
 where j.jobname in ('sigyl-expire-secrets', 'other-team-nightly', 'not-sigyl-backup');

select cmp_ok(private.trim_job_history(), '>=', 1, 'the trim deletes our old runs');
select is_empty($$select 1 from cron.job_run_details where return_message = 'trim-test sigyl-expire-secrets old'$$,
  'the old run of our job is gone');
select isnt_empty($$select 1 from cron.job_run_details where return_message = 'trim-test sigyl-expire-secrets recent'$$,
  'a recent run of our job stays');
select isnt_empty($$select 1 from cron.job_run_details where return_message = 'trim-test other-team-nightly old'$$,
  'an old run of another team''s job stays');
select isnt_empty($$select 1 from cron.job_run_details where return_message = 'trim-test not-sigyl-backup old'$$,
  'so does one of a job whose name merely contains sigyl');
select is(
  (select count(*)::int from cron.job_run_details where return_message like 'trim-test %'), 5,
  'five of the six runs remain');

select * from finish();
ROLLBACK;
