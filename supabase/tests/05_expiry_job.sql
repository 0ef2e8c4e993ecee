-- The expiry job, run the way pg_cron runs it: as postgres with no request claims at all.
-- It switches off live secrets whose expiry has passed, writes one 'expired' audit row per
-- secret with actor type 'system', and does nothing more on a second run.
BEGIN;
set local search_path = public, extensions;
select plan(16);

select tests.create_user('alice@example.com') as alice \gset
select tests.create_secret_as(:'alice', 'EXPIRED_TOKEN') as expired \gset
select tests.create_secret_as(:'alice', 'FUTURE_TOKEN') as future \gset
select tests.create_secret_as(:'alice', 'EXPIRED_AND_DELETED') as deleted \gset

-- As postgres with no claims; now() is the transaction's start, as the job will see it.
select tests.clear_authentication();
update public.secrets set expires_at = now() - interval '1 minute' where id in (:'expired', :'deleted');
update public.secrets set expires_at = now() + interval '1 day' where id = :'future';
update public.secrets set deleted_at = now() where id = :'deleted';

select tests.authenticate_as('alice@example.com');
select throws_ok('select private.deactivate_expired_secrets()', '42501', null,
  'a signed-in user cannot run the expiry job');
select tests.authenticate_as_service_role();
select throws_ok('select private.deactivate_expired_secrets()', '42501', null,
  'the service role cannot run the expiry job');

-- First run, as pg_cron ----------------------------------------------------------------

select tests.clear_authentication();
select is(current_setting('request.jwt.claims', true), '', 'the job runs with empty claims, as under pg_cron');
select is(auth.uid(), null, 'so there is no caller');

select is(private.deactivate_expired_secrets(), 1, 'the first run switches off exactly one secret');
select is(
  (select is_active from public.secrets where id = :'expired'), false,
  'the secret whose expiry passed is now inactive');
select is(
  (select is_active from public.secrets where id = :'future'), true,
  'a secret expiring later stays active');
select is(
  (select is_active from public.secrets where id = :'deleted'), true,
  'a deleted secret is left alone, even past its expiry');

select results_eq(
  format($$select action::text, actor_type::text, actor_id, owner_id, secret_name, outcome
             from public.secret_access_logs where secret_id = %L and action = 'expired'$$, :'expired'),
  format($$values ('expired'::text, 'system'::text, null::uuid, %L::uuid, 'EXPIRED_TOKEN'::text, 'success'::text)$$,
         :'alice'),
  'the run wrote exactly one expired row, actor type system, with no actor id');
select is(
  (select (details ->> 'expiresAt')::timestamptz from public.secret_access_logs
    where secret_id = :'expired' and action = 'expired'),
  now() - interval '1 minute',
  'the expired row records when the secret expired');
select is_empty(
  format($$select id from public.secret_access_logs where secret_id in (%L, %L) and action = 'expired'$$,
         :'future', :'deleted'),
  'no expired row for the secrets the job left alone');
select is_empty(
  format($$select id from public.secret_access_logs where secret_id = %L and action = 'updated'
            and details -> 'fields' ? 'isActive'$$, :'expired'),
  'the switch-off is recorded only as expired, not also as an update');

-- Second run: nothing left to do -----------------------------------------------------------

select is(private.deactivate_expired_secrets(), 0, 'a second run switches off nothing');
select is(
  (select count(*)::int from public.secret_access_logs where secret_id = :'expired' and action = 'expired'),
  1, 'a second run writes no further expired row');

-- The owner sees it, and the value can no longer be read -----------------------------------

select tests.authenticate_as('alice@example.com');
select results_eq(
  format($$select action::text, actor_type::text from public.secret_access_logs
            where secret_id = %L and action = 'expired'$$, :'expired'),
  $$values ('expired'::text, 'system'::text)$$,
  'the owner sees the expiry in her secret''s audit trail');
select is(
  (select outcome from private.read_value(:'expired')), 'secret_expired',
  'the owner''s value read of the expired secret returns secret_expired');

select tests.clear_authentication();
select * from finish();
ROLLBACK;
