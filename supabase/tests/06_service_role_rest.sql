-- The service role over REST (the service key). It bypasses RLS by design and reads every
-- row except the ciphertext, but it writes only through the level-checking, audited helpers,
-- like everyone else: it cannot move an owner, drop a version or read ciphertext unaudited.
BEGIN;
set local search_path = public, extensions;
select plan(11);

select tests.create_user('alice@example.com') as alice \gset
select tests.create_user('mallory@example.com') as mallory \gset
select tests.create_secret_as(:'alice', 'ALICE_SIGNING_KEY') as s1 \gset
select tests.create_secret_as(:'mallory', 'MALLORY_KEY') as s2 \gset

-- What the service role legitimately does ------------------------------------------------

select tests.authenticate_as_service_role();
select set_eq(
  format('select id from public.secrets where id in (%L, %L)', :'s1', :'s2'),
  format('values (%L::uuid), (%L::uuid)', :'s1', :'s2'),
  'the service role sees every owner''s secrets (it bypasses RLS)');
select lives_ok(
  'select secret_id, version, enc_format, kek_version, restored_from, created_by, created_at from public.secret_versions',
  'the service role lists the non-ciphertext columns of every version');
select lives_ok('select id, action from public.secret_access_logs',
  'the service role reads the audit log');
select tests.clear_authentication();

-- What it must not do: write around the helpers -------------------------------------------

select table_privs_are('public', 'secrets', 'service_role', array['SELECT'],
  'the service role may only SELECT public.secrets (writes go through the audited helpers)');
select table_privs_are('public', 'secret_permissions', 'service_role', array['SELECT'],
  'the service role may only SELECT public.secret_permissions');
select table_privs_are('public', 'secret_versions', 'service_role', '{}'::text[],
  'the service role holds no table-wide privilege on public.secret_versions (column SELECT only)');

select tests.authenticate_as_service_role();
select throws_ok(
  format('select ciphertext, wrapped_dek from public.secret_versions where secret_id = %L', :'s1'),
  '42501', null,
  'the service role cannot read ciphertext over REST, bypassing the accessed audit row');
select throws_ok(
  format('update public.secrets set user_id = %L where id = %L', :'mallory', :'s1'),
  '42501', null,
  'the service role cannot hand alice''s secret to another user directly (no audit row is written)');
select throws_ok(
  format('update public.secrets set current_version = 0 where id = %L', :'s1'),
  '42501', null,
  'the service role cannot move a secret''s current version directly, skipping check-and-set');
select throws_ok(
  format('delete from public.secret_versions where secret_id = %L', :'s1'),
  '42501', null,
  'the service role cannot delete value versions directly (no audit row is written)');
select throws_ok(
  format($$insert into public.secret_permissions (secret_id, user_id, permission, granted_by)
           values (%L, %L, 'admin', %L)$$, :'s1', :'mallory', :'alice'),
  '42501', null,
  'the service role cannot insert a grant directly with a forged granted_by');
select tests.clear_authentication();

select * from finish();
ROLLBACK;
