-- What a signed-in user can read through the REST API (role authenticated + RLS), for its own
-- secrets, for secrets shared with it at each level, and for everybody else's.
BEGIN;
set local search_path = public, extensions;
select plan(33);

select tests.create_user('alice@example.com') as alice \gset
select tests.create_user('bob@example.com') as bob \gset
select tests.create_user('carol@example.com') as carol \gset
select tests.create_user('dave@example.com') as dave \gset
select tests.create_secret_as(:'alice', 'ALICE_STRIPE_KEY') as alice_secret \gset
select tests.create_secret_as(:'bob', 'BOB_DB_URL') as bob_secret \gset

-- A stranger sees nothing of alice's secret ---------------------------------------------

select tests.authenticate_as('bob@example.com');

select results_eq(
  'select id from public.secrets',
  format('values (%L::uuid)', :'bob_secret'),
  'bob lists only his own secret');
select is_empty(
  format('select id from public.secrets where id = %L', :'alice_secret'),
  'bob cannot fetch alice''s secret by id');
select is_empty(
  format('select version from public.secret_versions where secret_id = %L', :'alice_secret'),
  'bob sees none of alice''s versions');
select is_empty(
  format('select user_id from public.secret_permissions where secret_id = %L', :'alice_secret'),
  'bob sees none of alice''s grants');
select is_empty(
  format('select id from public.secret_access_logs where secret_id = %L', :'alice_secret'),
  'bob sees none of the audit rows of alice''s secret');
select results_eq(
  'select secret_id, action::text from public.secret_access_logs order by id',
  format($$values (%L::uuid, 'created')$$, :'bob_secret'),
  'bob''s audit trail holds only the creation of his own secret');

select tests.authenticate_as('alice@example.com');
select results_eq(
  'select id from public.secrets',
  format('values (%L::uuid)', :'alice_secret'),
  'alice lists only her own secret, not bob''s');
select results_eq(
  'select secret_id, version from public.secret_versions',
  format('values (%L::uuid, 1)', :'alice_secret'),
  'the owner lists the versions of her secret');

-- alice shares with bob at 'use': metadata yes, versions no ----------------------------

select lives_ok(
  format($$select private.grant_permission(%L, %L, null, 'use')$$, :'alice_secret', :'bob'),
  'alice grants bob use on her secret');

select tests.authenticate_as('bob@example.com');
select set_eq(
  'select id from public.secrets',
  format('values (%L::uuid), (%L::uuid)', :'alice_secret', :'bob_secret'),
  'a use grantee sees the shared secret''s metadata row');
select results_eq(
  format('select name, user_id from public.secrets where id = %L', :'alice_secret'),
  format($$values ('ALICE_STRIPE_KEY'::text, %L::uuid)$$, :'alice'),
  'a use grantee reads the shared secret''s name and owner');
select is_empty(
  format('select version from public.secret_versions where secret_id = %L', :'alice_secret'),
  'a use grantee sees no version rows of the shared secret');
select is_empty(
  format('select id from public.secret_access_logs where secret_id = %L', :'alice_secret'),
  'a use grantee sees none of the shared secret''s audit rows');

-- alice raises bob to 'read': version rows (non-ciphertext columns) ---------------------

select tests.authenticate_as('alice@example.com');
select lives_ok(
  format($$select private.grant_permission(%L, %L, null, 'read')$$, :'alice_secret', :'bob'),
  'alice raises bob to read');

select tests.authenticate_as('bob@example.com');
select results_eq(
  format('select secret_id, version, kek_version, created_by from public.secret_versions where secret_id = %L',
         :'alice_secret'),
  format('values (%L::uuid, 1, 1, %L::uuid)', :'alice_secret', :'alice'),
  'a read grantee lists the shared secret''s versions (non-ciphertext columns)');
select throws_ok(
  format('select ciphertext from public.secret_versions where secret_id = %L', :'alice_secret'),
  '42501', null,
  'a read grantee still cannot select the ciphertext over REST');
select is_empty(
  format('select id from public.secret_access_logs where secret_id = %L', :'alice_secret'),
  'a read grantee sees none of the shared secret''s audit rows');

-- Grants: a grantee sees only its own row; owners and admins see all ---------------------

select tests.authenticate_as('alice@example.com');
select lives_ok(
  format($$select private.grant_permission(%L, %L, null, 'use')$$, :'alice_secret', :'carol'),
  'alice grants carol use');

select tests.authenticate_as('bob@example.com');
select results_eq(
  'select secret_id, user_id, permission::text from public.secret_permissions',
  format($$values (%L::uuid, %L::uuid, 'read')$$, :'alice_secret', :'bob'),
  'a grantee sees only its own grant row, not the other grantees''');

select tests.authenticate_as('carol@example.com');
select results_eq(
  'select user_id from public.secret_permissions',
  format('values (%L::uuid)', :'carol'),
  'another grantee likewise sees only its own grant');

select tests.authenticate_as('alice@example.com');
select set_eq(
  format('select user_id, permission::text from public.secret_permissions where secret_id = %L', :'alice_secret'),
  format($$values (%L::uuid, 'read'), (%L::uuid, 'use')$$, :'bob', :'carol'),
  'the owner sees every grant of her secret');
select set_eq(
  format('select action::text from public.secret_access_logs where secret_id = %L', :'alice_secret'),
  array['created', 'shared'],
  'the owner sees the audit trail of her secret');

select lives_ok(
  format($$select private.grant_permission(%L, %L, null, 'admin')$$, :'alice_secret', :'dave'),
  'alice grants dave admin');
select tests.authenticate_as('dave@example.com');
select set_eq(
  format('select user_id from public.secret_permissions where secret_id = %L', :'alice_secret'),
  format('values (%L::uuid), (%L::uuid), (%L::uuid)', :'bob', :'carol', :'dave'),
  'an admin grantee sees every grant of the secret');
select ok(
  (select count(*) from public.secret_access_logs where secret_id = :'alice_secret') > 0,
  'an admin grantee sees the secret''s audit trail');
select is_empty(
  format('select id from public.secrets where id = %L', :'bob_secret'),
  'an admin of one secret sees nothing of another owner''s secret');

-- Revoking takes it all away ------------------------------------------------------------

select tests.authenticate_as('alice@example.com');
select lives_ok(
  format('select private.revoke_permission(%L, %L)', :'alice_secret', :'bob'),
  'alice revokes bob''s grant');

select tests.authenticate_as('bob@example.com');
select is_empty(
  format('select id from public.secrets where id = %L', :'alice_secret'),
  'after the revocation bob no longer sees the secret');
select is_empty(
  format('select version from public.secret_versions where secret_id = %L', :'alice_secret'),
  'after the revocation bob no longer sees its versions');
select is_empty(
  format('select user_id from public.secret_permissions where secret_id = %L', :'alice_secret'),
  'after the revocation bob no longer has a grant row');

-- A deleted secret: gone for a use grantee, still there for the owner and for an admin.
select tests.clear_authentication();
select tests.create_user('dora@example.com') as dora \gset
select tests.create_user('adam@example.com') as adam \gset
select tests.create_secret_as(:'alice', 'ALICE_DELETED') as deleted_secret \gset
insert into public.secret_permissions (secret_id, user_id, permission, granted_by)
  values (:'deleted_secret', :'dora', 'use', :'alice'), (:'deleted_secret', :'adam', 'admin', :'alice');
update public.secrets set deleted_at = now() where id = :'deleted_secret';
select tests.authenticate_as('dora@example.com');
select is_empty(format('select id from public.secrets where id = %L', :'deleted_secret'),
  'a use grantee no longer sees a deleted secret''s metadata');
select tests.authenticate_as('adam@example.com');
select isnt_empty(format('select id from public.secrets where id = %L', :'deleted_secret'),
  'an admin still sees it, to restore it');
select tests.authenticate_as('alice@example.com');
select isnt_empty(format('select id from public.secrets where id = %L', :'deleted_secret'),
  'and so does its owner');

select tests.clear_authentication();
select * from finish();
ROLLBACK;
