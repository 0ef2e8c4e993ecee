-- The security-definer helpers in `private` (called by the function while it acts as the
-- signed-in caller) enforce the caller's level themselves: a stranger is told the secret does
-- not exist, a grantee below the level needed is forbidden, and a value read always leaves
-- exactly one audit row ('accessed' or 'denied') with the caller and request recorded.
BEGIN;
set local search_path = public, extensions;
select plan(37);

-- alice owns the secret; bob has read, carol use, erin write; dave is a stranger.
select tests.create_user('alice@example.com') as alice \gset
select tests.create_user('bob@example.com') as bob \gset
select tests.create_user('carol@example.com') as carol \gset
select tests.create_user('erin@example.com') as erin \gset
select tests.create_user('dave@example.com') as dave \gset
select tests.create_secret_as(:'alice', 'ALICE_OPENAI_KEY') as s1 \gset

select tests.authenticate_as('alice@example.com');
select lives_ok(
  format($$select private.grant_permission(%L, %L, null, 'read'),
                  private.grant_permission(%L, %L, null, 'use'),
                  private.grant_permission(%L, null, 'ERIN@example.com', 'write')$$,
         :'s1', :'bob', :'s1', :'carol', :'s1'),
  'the owner grants bob read, carol use and erin (by email) write');

-- A stranger: every helper answers as if the secret did not exist -------------------------

select tests.authenticate_as('dave@example.com');

select is(private.caller_permission(:'s1'), null, 'a stranger has no level on alice''s secret');
select throws_ok(
  format($$select private.update_secret(%L, '{"name": "HIJACKED"}')$$, :'s1'),
  'S0404', 'secret_not_found', 'a stranger gets secret_not_found from update_secret');
select throws_ok(
  format($$select private.put_value(%L, 1, tests.dummy_bytes(12), tests.dummy_bytes(17), tests.dummy_bytes(60), 1)$$, :'s1'),
  'S0404', 'secret_not_found', 'a stranger gets secret_not_found from put_value');
select throws_ok(
  format('select private.set_deleted(%L, true)', :'s1'),
  'S0404', 'secret_not_found', 'a stranger gets secret_not_found from set_deleted');
select throws_ok(
  format($$select private.grant_permission(%L, %L, null, 'admin')$$, :'s1', :'dave'),
  'S0404', 'secret_not_found', 'a stranger cannot grant himself admin: secret_not_found');
select throws_ok(
  format('select private.list_grants(%L)', :'s1'),
  'S0404', 'secret_not_found', 'a stranger gets secret_not_found from list_grants');
select throws_ok(
  format('select private.version_for_rollback(%L, 1)', :'s1'),
  'S0404', 'secret_not_found', 'a stranger gets secret_not_found from version_for_rollback');
select throws_ok(
  format('select private.revoke_permission(%L, %L)', :'s1', :'bob'),
  'S0404', 'secret_not_found', 'a stranger cannot revoke someone else''s grant: secret_not_found');
select results_eq(
  format('select outcome, ciphertext is null, wrapped_dek is null from private.read_value(%L)', :'s1'),
  $$values ('secret_not_found'::text, true, true)$$,
  'a stranger''s value read returns secret_not_found and no ciphertext');
select throws_ok(
  format($$select private.create_secret(extensions.gen_random_uuid(), %L, 'PLANTED', 'custom', null, null, null,
                                        tests.dummy_bytes(12), tests.dummy_bytes(17), tests.dummy_bytes(60), 1)$$,
         :'alice'),
  'S0403', 'forbidden', 'a user cannot create a secret owned by someone else');

-- A 'use' grantee: the value read is denied, and the denial is audited --------------------

select tests.authenticate_as('carol@example.com');
select results_eq(
  format('select outcome, version, ciphertext is null, iv is null, wrapped_dek is null from private.read_value(%L)', :'s1'),
  $$values ('forbidden'::text, null::int, true, true, true)$$,
  'a use grantee''s value read returns forbidden and no ciphertext');
select results_eq(
  'select action::text, outcome from public.secret_access_logs where actor_id = auth.uid()',
  $$values ('denied'::text, 'denied'::text)$$,
  'the use grantee sees her own denied attempt in her audit trail');

select tests.clear_authentication();
select results_eq(
  format($$select actor_type::text, outcome, details ->> 'reason' from public.secret_access_logs
            where secret_id = %L and actor_id = %L and action = 'denied'$$, :'s1', :'carol'),
  $$values ('user'::text, 'denied'::text, 'forbidden'::text)$$,
  'the use grantee''s read wrote exactly one denied row, reason forbidden');
select is_empty(
  format($$select id from public.secret_access_logs where secret_id = %L and action = 'accessed'$$, :'s1'),
  'the use grantee''s denied read wrote no accessed row');
select is_empty(
  format('select id from public.secret_access_logs where actor_id = %L', :'dave'),
  'the stranger''s refused attempts left no audit row (nothing to tell about a secret he cannot see)');

-- The owner: the value read succeeds and is audited with the request's details --------------

select tests.authenticate_as('alice@example.com');
select set_config('request.headers',
  '{"x-forwarded-for":"203.0.113.9, 10.0.0.1","user-agent":"pgtap","x-request-id":"req-1"}', true) is not null
  as headers_set \gset
select results_eq(
  format($$select outcome, version, kek_version, octet_length(iv), octet_length(wrapped_dek), ciphertext is not null
             from private.read_value(%L)$$, :'s1'),
  $$values ('ok'::text, 1, 1, 12, 60, true)$$,
  'the owner''s value read returns ok with the current version''s envelope');
select tests.clear_authentication();

select results_eq(
  format($$select actor_type::text, actor_id, owner_id, version, outcome
             from public.secret_access_logs where secret_id = %L and action = 'accessed'$$, :'s1'),
  format($$values ('user'::text, %L::uuid, %L::uuid, 1, 'success'::text)$$, :'alice', :'alice'),
  'the owner''s read wrote exactly one accessed row, actor type user, actor alice');
select results_eq(
  format($$select ip, user_agent, request_id from public.secret_access_logs
            where secret_id = %L and action = 'accessed'$$, :'s1'),
  $$values ('203.0.113.9'::text, 'pgtap'::text, 'req-1'::text)$$,
  'the accessed row records the first x-forwarded-for hop, the user agent and the request id');
select results_eq(
  format($$select details from public.secret_access_logs where secret_id = %L and action = 'accessed'$$, :'s1'),
  $$values ('{}'::jsonb)$$,
  'the accessed row''s details are empty: no value and no key material');

select tests.authenticate_as('alice@example.com');
select ok(
  exists (select 1 from public.secret_access_logs where secret_id = :'s1' and actor_id = :'carol' and action = 'denied'),
  'the owner sees the use grantee''s denied attempt in her secret''s trail');

-- A 'read' grantee: may read the value, may not write ------------------------------------

select tests.authenticate_as('bob@example.com');
select is(
  (select outcome from private.read_value(:'s1')), 'ok',
  'a read grantee''s value read returns ok');
select throws_ok(
  format($$select private.put_value(%L, 1, tests.dummy_bytes(12), tests.dummy_bytes(17), tests.dummy_bytes(60), 1)$$, :'s1'),
  'S0403', 'forbidden', 'a read grantee gets forbidden from put_value');
select throws_ok(
  format($$select private.update_secret(%L, '{"expiresAt": null}')$$, :'s1'),
  'S0403', 'forbidden', 'a read grantee gets forbidden from update_secret');
select throws_ok(
  format('select private.version_for_rollback(%L, 1)', :'s1'),
  'S0403', 'forbidden', 'a read grantee gets forbidden from version_for_rollback');
select throws_ok(
  format($$select private.grant_permission(%L, %L, null, 'admin')$$, :'s1', :'bob'),
  'S0403', 'forbidden', 'a read grantee cannot raise himself to admin');
select lives_ok(
  format('select private.revoke_permission(%L, %L)', :'s1', :'bob'),
  'a grantee may always drop his own grant');
select is(private.caller_permission(:'s1'), null, 'after dropping it bob has no level left');

-- A 'write' grantee: new values and metadata, but no delete, grants or grant listing ---------

select tests.authenticate_as('erin@example.com');
select is(
  (select current_version from private.put_value(:'s1', 1, tests.dummy_bytes(12), tests.dummy_bytes(17), tests.dummy_bytes(60), 1)),
  2, 'a write grantee may put a new value version');
select throws_ok(
  format($$select private.put_value(%L, 1, tests.dummy_bytes(12), tests.dummy_bytes(17), tests.dummy_bytes(60), 1)$$, :'s1'),
  'S0409', 'version_conflict', 'a write with a stale expected version is a version_conflict');
select throws_ok(
  format('select private.set_deleted(%L, true)', :'s1'),
  'S0403', 'forbidden', 'a write grantee gets forbidden from set_deleted');
select throws_ok(
  format($$select private.grant_permission(%L, %L, null, 'admin')$$, :'s1', :'erin'),
  'S0403', 'forbidden', 'a write grantee cannot raise herself to admin');
select throws_ok(
  format('select private.list_grants(%L)', :'s1'),
  'S0403', 'forbidden', 'a write grantee gets forbidden from list_grants');
select throws_ok(
  format('select private.revoke_permission(%L, %L)', :'s1', :'carol'),
  'S0403', 'forbidden', 'a write grantee cannot revoke another grantee');
select throws_ok(
  format($$select private.put_value(%L, 2, tests.dummy_bytes(12), tests.dummy_bytes(16), tests.dummy_bytes(60), 1)$$, :'s1'),
  'S0400', null, 'a ciphertext shorter than 17 bytes (16-byte tag plus at least one byte) is refused by the helper, before the table''s check');

-- The owner keeps full control ------------------------------------------------------------

select tests.authenticate_as('alice@example.com');
select set_eq(
  format('select user_id, permission::text from private.list_grants(%L)', :'s1'),
  format($$values (%L::uuid, 'use'), (%L::uuid, 'write')$$, :'carol', :'erin'),
  'the owner lists the remaining grants');
select throws_ok(
  format($$select private.grant_permission(%L, %L, null, 'read')$$, :'s1', :'alice'),
  'S0400', 'cannot_grant_owner', 'the owner cannot be given a grant on her own secret');

select tests.clear_authentication();
select * from finish();
ROLLBACK;
