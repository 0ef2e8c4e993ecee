-- The function's login, sigyl_api: it owns nothing, cannot switch off triggers or replication
-- roles, cannot touch audit rows or versions directly, and may only become authenticated or
-- service_role. The API helpers refuse every session that did not log in as it (or a member):
-- PostgREST's authenticator gets api_role_required even when it may execute them. And the
-- helpers check, themselves, what the function checks before calling them: the envelope's
-- lengths, the active KEK, a deployment token's lifetime.
BEGIN;
set local search_path = public, extensions;
select plan(33);

select tests.create_user('api-owner@example.com') as owner_id \gset
select tests.create_secret_as(:'owner_id', 'API_ROLE_SECRET') as s1 \gset
insert into public.deployments (user_id, name) values (:'owner_id', 'api-role-deploy') returning id as d1 \gset
select version as kek from private.key_versions where status = 'active' \gset

-- What the role is ----------------------------------------------------------------------

select has_role('sigyl_api', 'the migrations create the role sigyl_api');
select is(
  (select row(rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls)::text
     from pg_roles where rolname = 'sigyl_api'),
  '(f,f,f,f,f,f)',
  'sigyl_api is no superuser, inherits nothing, creates no role or database, neither replicates nor bypasses RLS');
select is_empty(
  $$select 'class ' || oid::regclass::text from pg_class where relowner = 'sigyl_api'::regrole
    union all select 'function ' || oid::regprocedure::text from pg_proc where proowner = 'sigyl_api'::regrole
    union all select 'schema ' || nspname from pg_namespace where nspowner = 'sigyl_api'::regrole
    union all select 'type ' || oid::regtype::text from pg_type where typowner = 'sigyl_api'::regrole$$,
  'sigyl_api owns no table, function, schema or type');
select is_empty(
  $$select c.oid::regclass::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname in ('public', 'private', 'auth', 'vault') and c.relkind in ('r', 'v', 'm', 'p')
       and (has_table_privilege('sigyl_api', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER')
            or has_any_column_privilege('sigyl_api', c.oid, 'SELECT, INSERT, UPDATE'))$$,
  'as itself (NOINHERIT), sigyl_api holds no table privilege: only by set role does it get any');
select ok(pg_has_role('sigyl_api', 'authenticated', 'MEMBER') and pg_has_role('sigyl_api', 'service_role', 'MEMBER'),
  'sigyl_api is a member of authenticated and service_role');
select ok(not pg_has_role('sigyl_api', 'postgres', 'MEMBER') and not pg_has_role('sigyl_api', 'authenticator', 'MEMBER'),
  'sigyl_api is a member neither of postgres nor of authenticator');

-- What it cannot do ---------------------------------------------------------------------

-- pgTAP lives in schema extensions, which sigyl_api cannot see as itself; this transaction
-- lets it, to run the assertions below (rolled back with the rest).
grant usage on schema extensions, tests to sigyl_api;
grant execute on all functions in schema tests to sigyl_api;
set local session authorization sigyl_api;
select is(session_user::text, 'sigyl_api', 'this session now acts as the function''s login');
select throws_ok('set session_replication_role = replica', '42501', null,
  'sigyl_api cannot set session_replication_role (which would skip every trigger)');
select throws_ok('alter table public.secret_access_logs disable trigger all', '42501', null,
  'sigyl_api cannot disable the audit log''s triggers');
select throws_ok('alter table public.secret_versions disable trigger secret_versions_immutable', '42501', null,
  'sigyl_api cannot disable the trigger that keeps versions immutable');
select throws_ok('delete from public.secret_access_logs', '42501', null,
  'sigyl_api cannot delete audit rows');
select throws_ok('select * from private.create_kek(99)', '42501', null,
  'sigyl_api cannot create a KEK outside a rotation');

select lives_ok('set local role service_role', 'sigyl_api can become service_role');
select throws_ok('update public.secret_access_logs set action = ''created''', '42501', null,
  'as service_role it cannot update audit rows');
select throws_ok(format('update public.secret_versions set ciphertext = ''\x00'' where secret_id = %L', :'s1'), '42501', null,
  'as service_role it cannot rewrite a version');
select throws_ok('alter table public.secret_versions disable trigger all', '42501', null,
  'as service_role it cannot disable triggers either');
select lives_ok('set local role authenticated', 'sigyl_api can become authenticated');
select throws_ok(format('delete from public.secret_versions where secret_id = %L', :'s1'), '42501', null,
  'as authenticated it cannot delete a version');
select lives_ok('reset role', 'and back to itself');

-- It passes the guard; the SQL-side checks hold -----------------------------------------

select set_config('role', 'authenticated', true);
select set_config('request.jwt.claims', tests.user_claims(:'owner_id')::text, true);
select is((select outcome from private.read_value(extensions.gen_random_uuid())), 'secret_not_found',
  'as sigyl_api acting as a user, the helpers answer (the guard lets it through)');

select throws_ok(
  format($$select private.create_secret(extensions.gen_random_uuid(), null, 'BAD_IV', 'custom', null, null, null,
      tests.dummy_bytes(16), tests.dummy_bytes(33), tests.dummy_bytes(60), %s)$$, :kek),
  'S0400', null, 'create_secret refuses an IV that is not 12 bytes');
select throws_ok(
  format($$select private.create_secret(extensions.gen_random_uuid(), null, 'BAD_DEK', 'custom', null, null, null,
      tests.dummy_bytes(12), tests.dummy_bytes(33), tests.dummy_bytes(44), %s)$$, :kek),
  'S0400', null, 'create_secret refuses a wrapped DEK that is not 60 bytes');
select throws_ok(
  format($$select private.create_secret(extensions.gen_random_uuid(), null, 'BAD_CIPHERTEXT', 'custom', null, null, null,
      tests.dummy_bytes(12), tests.dummy_bytes(16), tests.dummy_bytes(60), %s)$$, :kek),
  'S0400', null, 'create_secret refuses a ciphertext shorter than one byte and its tag');
select throws_ok(
  $$select private.create_secret(extensions.gen_random_uuid(), null, 'NO_SUCH_KEK', 'custom', null, null, null,
      tests.dummy_bytes(12), tests.dummy_bytes(33), tests.dummy_bytes(60), 424242)$$,
  'S0400', null, 'create_secret refuses a KEK version that does not exist');
select throws_ok(
  format($$select private.put_value(%L, 1, tests.dummy_bytes(12), tests.dummy_bytes(17), tests.dummy_bytes(59),
      %s)$$, :'s1', :kek),
  'S0400', null, 'put_value refuses a wrapped DEK that is not 60 bytes');
select is((select count(*)::int from public.secrets where user_id = :'owner_id'), 1,
  'none of the refused writes created a secret');
select is((select current_version from public.secrets where id = :'s1'), 1,
  'nor a version');

select throws_ok(format($$select private.create_deployment_token(%L, tests.dummy_bytes(32), now() + interval '2 days')$$, :'d1'),
  'S0400', null, 'create_deployment_token refuses a token living longer than a day');
select throws_ok(format($$select private.create_deployment_token(%L, tests.dummy_bytes(32), now() - interval '1 second')$$, :'d1'),
  'S0400', null, 'create_deployment_token refuses a token already expired');
select lives_ok(format($$select private.create_deployment_token(%L, tests.dummy_bytes(32), now() + interval '1 day')$$, :'d1'),
  'create_deployment_token takes a token living a day');

-- A retiring KEK: a write sealed under it is refused as kek_retired (the function reloads).
reset role;
reset session authorization;
update private.key_versions set status = 'retiring' where status = 'active' returning version as old_kek \gset
insert into private.key_versions (version, vault_secret_id, status)
  values ((select max(version) + 1 from private.key_versions), extensions.gen_random_uuid(), 'active');
set local session authorization sigyl_api;
select set_config('role', 'authenticated', true);
select throws_ok(
  format($$select private.create_secret(extensions.gen_random_uuid(), null, 'OLD_KEK', 'custom', null, null, null,
      tests.dummy_bytes(12), tests.dummy_bytes(33), tests.dummy_bytes(60), %s)$$, :old_kek),
  'S0409', 'kek_retired', 'create_secret refuses a KEK that is no longer the active one, as kek_retired');

-- The guard: PostgREST's login, even with execute granted ---------------------------------

reset role;
reset session authorization;
grant usage on schema private, extensions to authenticator;
grant execute on function private.read_value(uuid, int), private.create_deployment_token(uuid, bytea, timestamptz) to authenticator;
set local session authorization authenticator;
select throws_ok(format('select * from private.read_value(%L)', :'s1'), 'S0500', 'api_role_required',
  'authenticator, granted execute itself, gets api_role_required from read_value');
select set_config('role', 'authenticated', true);
select set_config('request.jwt.claims', tests.user_claims(:'owner_id')::text, true);
select throws_ok(format('select * from private.read_value(%L)', :'s1'), 'S0500', 'api_role_required',
  'authenticator acting as the owner, as PostgREST would, gets api_role_required too');

select * from finish();
ROLLBACK;
