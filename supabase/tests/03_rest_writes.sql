-- What nobody can write directly: the REST API's roles hold no write privilege on the four
-- tables (writes go through the level-checking helpers), the audit log is append-only for
-- every role, and a value version never changes except for the KEK rotation's re-wrap.
BEGIN;
set local search_path = public, extensions;
select plan(33);

select tests.create_user('alice@example.com') as alice \gset
select tests.create_user('bob@example.com') as bob \gset
select tests.create_secret_as(:'alice', 'ALICE_API_KEY') as alice_secret \gset
select count(*) as audit_rows_before from public.secret_access_logs \gset

-- Direct INSERTs over REST (POST /table) -----------------------------------------------

select tests.authenticate_as('alice@example.com');

select throws_ok(
  format($$insert into public.secrets (user_id, name) values (%L, 'SNEAKED_IN')$$, :'alice'),
  '42501', null,
  'a signed-in user cannot insert a secret directly, skipping validation and the audit');
select throws_ok(
  format($$insert into public.secret_versions (secret_id, version, iv, ciphertext, wrapped_dek, kek_version)
           values (%L, 2, tests.dummy_bytes(12), tests.dummy_bytes(17), tests.dummy_bytes(60), 1)$$,
         :'alice_secret'),
  '42501', null,
  'the owner cannot insert a value version directly, skipping encryption and check-and-set');
select throws_ok(
  format($$insert into public.secret_permissions (secret_id, user_id, permission) values (%L, %L, 'admin')$$,
         :'alice_secret', :'bob'),
  '42501', null,
  'the owner cannot insert a grant directly');
select throws_ok(
  format($$insert into public.secret_access_logs (secret_id, actor_type, action) values (%L, 'system', 'accessed')$$,
         :'alice_secret'),
  '42501', null,
  'a signed-in user cannot forge an audit row');

-- Direct UPDATEs and DELETEs of her own rows (PATCH / DELETE /table) ----------------------

select throws_ok(
  format($$update public.secrets set name = 'RENAMED' where id = %L$$, :'alice_secret'),
  '42501', null,
  'the owner cannot update her secret directly');
select throws_ok(
  format($$update public.secrets set user_id = %L where id = %L$$, :'bob', :'alice_secret'),
  '42501', null,
  'the owner cannot hand her secret to someone else directly');
select throws_ok(
  format($$update public.secrets set expires_at = null, is_active = true where id = %L$$, :'alice_secret'),
  '42501', null,
  'the owner cannot lift an expiry directly');
select throws_ok(
  format('delete from public.secrets where id = %L', :'alice_secret'),
  '42501', null,
  'the owner cannot delete her secret directly');
select throws_ok(
  format('update public.secret_versions set created_by = null where secret_id = %L', :'alice_secret'),
  '42501', null,
  'the owner cannot update a value version directly');
select throws_ok(
  format('delete from public.secret_versions where secret_id = %L', :'alice_secret'),
  '42501', null,
  'the owner cannot delete a value version directly');
select throws_ok(
  format('delete from public.secret_access_logs where secret_id = %L', :'alice_secret'),
  '42501', null,
  'the owner cannot delete her secret''s audit rows');
select throws_ok(
  format($$update public.secret_access_logs set action = 'updated' where secret_id = %L$$, :'alice_secret'),
  '42501', null,
  'the owner cannot rewrite her secret''s audit rows');
select throws_ok('truncate public.secret_access_logs', '42501', null,
  'a signed-in user cannot truncate the audit log');
select throws_ok('truncate public.secrets cascade', '42501', null,
  'a signed-in user cannot truncate the secrets');

-- A grantee cannot raise its own level or drop its grant row directly.
select tests.authenticate_as('alice@example.com');
select lives_ok(
  format($$select private.grant_permission(%L, %L, null, 'use')$$, :'alice_secret', :'bob'),
  'alice grants bob use');
select tests.authenticate_as('bob@example.com');
select throws_ok(
  format($$update public.secret_permissions set permission = 'admin' where secret_id = %L and user_id = %L$$,
         :'alice_secret', :'bob'),
  '42501', null,
  'a use grantee cannot raise his own grant to admin directly');
select throws_ok(
  format('delete from public.secret_permissions where secret_id = %L', :'alice_secret'),
  '42501', null,
  'a grantee cannot delete grant rows directly');

select tests.authenticate_as_anon();
select throws_ok(
  format($$insert into public.secrets (user_id, name) values (%L, 'ANON')$$, :'alice'),
  '42501', null,
  'a visitor who is not signed in cannot insert a secret');

select tests.clear_authentication();
select results_eq(
  format('select name, user_id, is_active, current_version from public.secrets where id = %L', :'alice_secret'),
  format($$values ('ALICE_API_KEY'::text, %L::uuid, true, 1)$$, :'alice'),
  'the refused writes left alice''s secret untouched');
select results_eq(
  format('select permission::text from public.secret_permissions where secret_id = %L and user_id = %L',
         :'alice_secret', :'bob'),
  $$values ('use'::text)$$,
  'the refused writes left bob''s grant at use');

-- The audit log is append-only for every role, the table owner included ------------------

select throws_ok('update public.secret_access_logs set ip = ''198.51.100.1''', 'P0001',
  'the audit log is append-only',
  'even postgres cannot update an audit row (trigger)');
select throws_ok('delete from public.secret_access_logs', 'P0001',
  'the audit log is append-only',
  'even postgres cannot delete an audit row (trigger)');
select throws_ok('truncate public.secret_access_logs', 'P0001',
  'the audit log is append-only',
  'even postgres cannot truncate the audit log (trigger)');

select tests.authenticate_as_service_role();
select throws_ok('update public.secret_access_logs set ip = null', '42501', null,
  'the service role holds no UPDATE on the audit log');
select throws_ok('delete from public.secret_access_logs', '42501', null,
  'the service role holds no DELETE on the audit log');
select tests.clear_authentication();

-- Defence in depth: were UPDATE/DELETE granted by mistake, the trigger still refuses.
grant update, delete on public.secret_access_logs to service_role;
select tests.authenticate_as_service_role();
select throws_ok('update public.secret_access_logs set ip = null', 'P0001',
  'the audit log is append-only',
  'the trigger refuses the service role''s update even with the privilege granted');
select throws_ok('delete from public.secret_access_logs', 'P0001',
  'the audit log is append-only',
  'the trigger refuses the service role''s delete even with the privilege granted');
select tests.clear_authentication();

select is(
  (select count(*) from public.secret_access_logs),
  :'audit_rows_before'::bigint + 1,
  'the audit log holds every earlier row plus the one grant, nothing removed');

-- Value versions are immutable, except the KEK rotation's re-wrap -------------------------

select throws_ok(
  format('update public.secret_versions set ciphertext = tests.dummy_bytes(40) where secret_id = %L', :'alice_secret'),
  'P0001', 'secret versions are immutable',
  'even postgres cannot rewrite a version''s ciphertext');
select throws_ok(
  format('update public.secret_versions set iv = tests.dummy_bytes(12) where secret_id = %L', :'alice_secret'),
  'P0001', 'secret versions are immutable',
  'even postgres cannot change a version''s iv');
select throws_ok(
  format('update public.secret_versions set version = 7 where secret_id = %L', :'alice_secret'),
  'P0001', 'secret versions are immutable',
  'even postgres cannot renumber a version');

-- A rotation: KEK v2 becomes active, v1 retiring; the DEK of version 1 is re-wrapped.
update private.key_versions set status = 'retiring' where version = 1;
insert into private.key_versions (version, vault_secret_id, status)
values (2, vault.create_secret(encode(extensions.gen_random_bytes(32), 'base64'), 'sigyl_kek_v2_pgtap'), 'active');
select decode(repeat('ab', 60), 'hex') as rewrapped \gset
select iv as iv_before, ciphertext as ciphertext_before from public.secret_versions
 where secret_id = :'alice_secret' and version = 1 \gset

select lives_ok(
  format($$update public.secret_versions set wrapped_dek = %L::bytea, kek_version = 2 where secret_id = %L$$,
         :'rewrapped', :'alice_secret'),
  'postgres may re-wrap a version''s DEK under a new KEK (rotation)');
select results_eq(
  format('select iv, ciphertext, wrapped_dek, kek_version from public.secret_versions where secret_id = %L',
         :'alice_secret'),
  format('values (%L::bytea, %L::bytea, %L::bytea, 2)', :'iv_before', :'ciphertext_before', :'rewrapped'),
  'the re-wrap changed only the wrapped DEK and its KEK version');

select * from finish();
ROLLBACK;
