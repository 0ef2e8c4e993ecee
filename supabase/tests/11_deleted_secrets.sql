-- A deleted secret is visible only to its admins (owner, admin grantees, service role):
-- over REST and through the helpers, every other grantee finds nothing, as for a secret that
-- does not exist. A restore gives it back.
BEGIN;
set local search_path = public, extensions;
select plan(18);

select tests.create_user('alice@example.com') as alice \gset
select tests.create_user('bob@example.com') as bob \gset
select tests.create_user('carol@example.com') as carol \gset
select tests.create_user('dave@example.com') as dave \gset
select tests.create_secret_as(:'alice', 'ALICE_DELETED_KEY') as secret \gset

select tests.authenticate_as('alice@example.com');
select private.grant_permission(:'secret', :'bob', null, 'read');
select private.grant_permission(:'secret', :'dave', null, 'write');
select private.grant_permission(:'secret', :'carol', null, 'admin');
select lives_ok(format('select private.set_deleted(%L, true)', :'secret'), 'alice deletes her secret');

-- A read grantee ------------------------------------------------------------------------

select tests.authenticate_as('bob@example.com');
select is_empty(
  format('select id from public.secrets where id = %L', :'secret'),
  'a read grantee no longer sees the deleted secret''s metadata');
select is_empty(
  format('select version, kek_version, created_by from public.secret_versions where secret_id = %L', :'secret'),
  'a read grantee no longer sees the deleted secret''s versions over REST');
select is(private.caller_permission(:'secret'), null, 'a read grantee has no level on a deleted secret');
select is(
  (select outcome from private.read_value(:'secret')), 'secret_not_found',
  'reading the value of a deleted secret as a read grantee is secret_not_found, not secret_deleted');
select throws_ok(
  format($$select private.revoke_permission(%L, %L)$$, :'secret', :'bob'),
  'S0404', 'secret_not_found',
  'a read grantee cannot even find its own grant of a deleted secret');

-- A write grantee -----------------------------------------------------------------------

select tests.authenticate_as('dave@example.com');
select is_empty(
  format('select version from public.secret_versions where secret_id = %L', :'secret'),
  'a write grantee no longer sees the deleted secret''s versions');
select throws_ok(
  format($$select private.update_secret(%L, '{"description": "x"}')$$, :'secret'),
  'S0404', 'secret_not_found',
  'a write grantee''s change of a deleted secret is secret_not_found, not secret_deleted');
select throws_ok(
  format('select private.list_grants(%L)', :'secret'),
  'S0404', 'secret_not_found',
  'listing the grants of a deleted secret as a write grantee is secret_not_found, not forbidden');

-- Its admins keep seeing it --------------------------------------------------------------

select tests.authenticate_as('carol@example.com');
select is(private.caller_permission(:'secret'), 'admin', 'an admin grantee keeps its level on the deleted secret');
select results_eq(
  format('select version from public.secret_versions where secret_id = %L', :'secret'),
  'values (1)',
  'an admin grantee still sees the deleted secret''s versions');
select throws_ok(
  format($$select private.update_secret(%L, '{"description": "x"}')$$, :'secret'),
  'S0410', 'secret_deleted',
  'an admin''s change of the deleted secret is still secret_deleted');

select tests.authenticate_as('alice@example.com');
select results_eq(
  format('select version from public.secret_versions where secret_id = %L', :'secret'),
  'values (1)',
  'the owner still sees the deleted secret''s versions');
select is(
  (select outcome from private.read_value(:'secret')), 'secret_deleted',
  'the owner reading the deleted secret''s value gets secret_deleted');

select tests.authenticate_as_service_role();
select is(private.caller_permission(:'secret'), 'owner', 'the service role keeps seeing the deleted secret');

-- A restore gives it back ------------------------------------------------------------------

select tests.authenticate_as('alice@example.com');
select lives_ok(format('select private.set_deleted(%L, false)', :'secret'), 'alice restores her secret');

select tests.authenticate_as('bob@example.com');
select results_eq(
  format('select version from public.secret_versions where secret_id = %L', :'secret'),
  'values (1)',
  'after the restore the read grantee sees the versions again');
select is(private.caller_permission(:'secret'), 'read', 'after the restore the read grantee has its level back');

select * from finish();
ROLLBACK;
