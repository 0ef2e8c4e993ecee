-- What the REST API's roles hold at all: table, column, schema and function privileges, RLS,
-- and the keyring's isolation. Later files test what those privileges let a caller do.
BEGIN;
set local search_path = public, extensions;
select plan(76);

-- anon: nothing on the four tables -----------------------------------------------------

select table_privs_are('public', t, 'anon', '{}'::text[],
         format('anon holds no table privilege on public.%s', t))
  from unnest(array['secrets', 'secret_versions', 'secret_permissions', 'secret_access_logs']) t;

select is_empty(
  $$select c.relname from pg_class c
     where c.oid in ('public.secrets'::regclass, 'public.secret_versions'::regclass,
                     'public.secret_permissions'::regclass, 'public.secret_access_logs'::regclass)
       and has_any_column_privilege('anon', c.oid, 'SELECT, INSERT, UPDATE, REFERENCES')$$,
  'anon holds no column privilege on any of the four tables');

select is_empty(
  $$select c.oid::regclass::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname in ('public', 'graphql_public') and c.relkind in ('r', 'v', 'm', 'f', 'p')
       and (has_table_privilege('anon', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
            or has_any_column_privilege('anon', c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))$$,
  'anon can reach no table or view in an exposed schema');

select tests.authenticate_as_anon();
select throws_ok('select id from public.secrets', '42501', null,
  'a visitor who is not signed in cannot list secrets');
select throws_ok('select secret_id, version from public.secret_versions', '42501', null,
  'a visitor who is not signed in cannot list secret versions');
select throws_ok('select secret_id from public.secret_permissions', '42501', null,
  'a visitor who is not signed in cannot list grants');
select throws_ok('select id from public.secret_access_logs', '42501', null,
  'a visitor who is not signed in cannot read the audit log');
select tests.clear_authentication();

-- authenticated: reads only, and never the ciphertext columns ----------------------------

select table_privs_are('public', 'secrets', 'authenticated', array['SELECT'],
  'authenticated may only SELECT public.secrets');
select table_privs_are('public', 'secret_permissions', 'authenticated', array['SELECT'],
  'authenticated may only SELECT public.secret_permissions');
select table_privs_are('public', 'secret_access_logs', 'authenticated', array['SELECT'],
  'authenticated may only SELECT public.secret_access_logs');
select table_privs_are('public', 'secret_versions', 'authenticated', '{}'::text[],
  'authenticated holds no table-wide privilege on public.secret_versions (column SELECT only)');

select is_empty(
  $$select c.relname from pg_class c
     where c.oid in ('public.secrets'::regclass, 'public.secret_versions'::regclass,
                     'public.secret_permissions'::regclass, 'public.secret_access_logs'::regclass)
       and has_any_column_privilege('authenticated', c.oid, 'INSERT, UPDATE, REFERENCES')$$,
  'authenticated holds no INSERT or UPDATE on any column of the four tables');

select is(
  array(select a.attname::text from pg_attribute a
         where a.attrelid = 'public.secret_versions'::regclass and a.attnum > 0 and not a.attisdropped
           and has_column_privilege('authenticated', a.attrelid, a.attnum, 'SELECT')
         order by a.attnum),
  array['secret_id', 'version', 'enc_format', 'kek_version', 'restored_from', 'created_by', 'created_at'],
  'authenticated may select exactly the non-ciphertext columns of secret_versions');

select ok(not has_column_privilege('authenticated', 'public.secret_versions', c, 'SELECT'),
          format('authenticated cannot select secret_versions.%s', c))
  from unnest(array['iv', 'ciphertext', 'wrapped_dek']) c;

select table_privs_are('public', 'secret_access_logs', 'service_role', array['SELECT'],
  'even the service role may only SELECT the audit log');

select tests.create_user('owner@example.com') as owner_id \gset
select tests.create_secret_as(:'owner_id', 'PRIVS_PROBE') as secret_id \gset

select tests.authenticate_as('owner@example.com');
select lives_ok(
  'select secret_id, version, enc_format, kek_version, restored_from, created_by, created_at from public.secret_versions',
  'the owner can list the non-ciphertext columns of its versions');
select throws_ok('select ciphertext from public.secret_versions', '42501', null,
  'the owner cannot select ciphertext over REST');
select throws_ok('select iv from public.secret_versions', '42501', null,
  'the owner cannot select iv over REST');
select throws_ok('select wrapped_dek from public.secret_versions', '42501', null,
  'the owner cannot select wrapped_dek over REST');
select throws_ok('select * from public.secret_versions', '42501', null,
  'select=* on secret_versions is refused because it includes the ciphertext columns');
select throws_ok('select version from public.secret_versions where ciphertext is not null', '42501', null,
  'a filter on ciphertext (?ciphertext=not.is.null) is refused too, so it cannot be probed');
select throws_ok(
  $$select s.id, (select array_agg(v.wrapped_dek) from public.secret_versions v where v.secret_id = s.id)
      from public.secrets s$$,
  '42501', null,
  'an embedded select of secret_versions cannot reach wrapped_dek');
select tests.clear_authentication();

-- RLS ----------------------------------------------------------------------------------

select ok((select c.relrowsecurity from pg_class c where c.oid = format('public.%s', t)::regclass),
          format('row level security is enabled on public.%s', t))
  from unnest(array['secrets', 'secret_versions', 'secret_permissions', 'secret_access_logs']) t;

select is_empty(
  $$select tablename || ': ' || policyname from pg_policies
     where schemaname = 'public'
       and tablename in ('secrets', 'secret_versions', 'secret_permissions', 'secret_access_logs')
       and (cmd <> 'SELECT' or roles <> '{authenticated}'::name[] or permissive <> 'PERMISSIVE')$$,
  'every policy on the four tables is a permissive SELECT policy for authenticated only');

-- The REST API's function surface ------------------------------------------------------

select is_empty(
  $$select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname in ('public', 'graphql_public')
       and (has_function_privilege('anon', p.oid, 'EXECUTE')
            or has_function_privilege('authenticated', p.oid, 'EXECUTE'))$$,
  'no function in an exposed schema can be called over REST (/rpc) by anon or authenticated');

-- private: never anon; authenticated only the helpers the function calls ----------------

select schema_privs_are('private', 'anon', '{}'::text[], 'anon has no privilege on schema private');

select is_empty(
  $$select p.oid::regprocedure::text from pg_proc p
     where p.pronamespace = 'private'::regnamespace and has_function_privilege('anon', p.oid, 'EXECUTE')$$,
  'anon may execute no function in schema private');

select set_eq(
  $$select p.oid::regprocedure::text from pg_proc p
     where p.pronamespace = 'private'::regnamespace
       and has_function_privilege('authenticated', p.oid, 'EXECUTE')$$,
  array[
    'private.caller_permission(uuid)',
    'private.permission_rank(text)',
    'private.shared_secret_ids(secret_permission)',
    'private.tags_are_valid(text[])',
    'private.lock_secret_for(uuid,text)',
    'private.create_secret(uuid,uuid,text,secret_type,text,text[],timestamp with time zone,bytea,bytea,bytea,integer)',
    'private.update_secret(uuid,jsonb)',
    'private.put_value(uuid,integer,bytea,bytea,bytea,integer,integer)',
    'private.read_value(uuid,integer)',
    'private.version_for_rollback(uuid,integer)',
    'private.set_deleted(uuid,boolean)',
    'private.list_grants(uuid)',
    'private.grant_permission(uuid,uuid,text,secret_permission)',
    'private.revoke_permission(uuid,uuid)',
    'private.deployment_for(uuid)',
    'private.deployment_report(uuid)',
    'private.replace_bindings(uuid,jsonb)',
    'private.create_deployment_token(uuid,bytea,timestamp with time zone)',
    'private.list_deployment_tokens(uuid)',
    'private.revoke_deployment_token(uuid,uuid)',
    'private.resolve_deployment_env(uuid,bytea,text[])',
    'private.list_deployments(uuid,text,uuid,integer)',
    'private.claim_idempotency_key(bytea,bytea)',
    'private.store_idempotent_response(bytea,integer,jsonb,integer,bytea,bytea,bytea,integer)',
    'private.release_idempotency_key(bytea)'
  ],
  'authenticated may execute exactly the level-checking helpers in private, nothing else');

select function_privs_are('private', f.name, f.args, r.role, '{}'::text[],
         format('%s cannot execute private.%s', r.role, f.name))
  from (values ('load_keyring', '{}'::name[]),
               ('write_audit', array['uuid', 'text', 'uuid', 'audit_action', 'integer', 'jsonb', 'text', 'uuid']::name[]),
               ('deactivate_expired_secrets', array['timestamp with time zone']::name[]),
               ('purge_deleted_secrets', array['timestamp with time zone']::name[]),
               ('trim_job_history', array['timestamp with time zone']::name[]),
               ('run_scheduled_jobs', array['timestamp with time zone']::name[]),
               ('deployment_problems', array['uuid']::name[]),
               ('deployment_of_token', array['bytea']::name[])) f(name, args)
  cross join (values ('anon'), ('authenticated'), ('service_role')) r(role);

select table_privs_are('private', 'key_versions', r, '{}'::text[],
         format('%s holds no privilege on private.key_versions', r))
  from unnest(array['anon', 'authenticated', 'service_role']) r;

select tests.authenticate_as('owner@example.com');
select throws_ok('select * from private.load_keyring()', '42501', null,
  'a signed-in user cannot load the keyring');
select throws_ok('select version from private.key_versions', '42501', null,
  'a signed-in user cannot read the KEK versions');
select throws_ok('select decrypted_secret from vault.decrypted_secrets', '42501', null,
  'a signed-in user cannot read Vault');
select tests.authenticate_as_service_role();
select throws_ok('select * from private.load_keyring()', '42501', null,
  'the service role cannot load the keyring either');
select tests.clear_authentication();

-- vault: nothing for anon or authenticated ---------------------------------------------

select schema_privs_are('vault', r, '{}'::text[], format('%s has no privilege on schema vault', r))
  from unnest(array['anon', 'authenticated']) r;

select is_empty(
  $$select r.role || ' on ' || c.oid::regclass::text
      from pg_class c cross join (values ('anon'), ('authenticated')) r(role)
     where c.relnamespace = 'vault'::regnamespace and c.relkind in ('r', 'v', 'm', 'f', 'p', 'S')
       and (case when c.relkind = 'S'
                 then has_sequence_privilege(r.role, c.oid, 'USAGE, SELECT, UPDATE')
                 else has_table_privilege(r.role, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
                      or has_any_column_privilege(r.role, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES') end)$$,
  'anon and authenticated hold no privilege on any Vault table, view or sequence');

select is_empty(
  $$select r.role || ' on ' || p.oid::regprocedure::text
      from pg_proc p cross join (values ('anon'), ('authenticated')) r(role)
     where p.pronamespace = 'vault'::regnamespace and has_function_privilege(r.role, p.oid, 'EXECUTE')$$,
  'anon and authenticated may execute no Vault function');

-- Security-definer hygiene --------------------------------------------------------------

select is_empty(
  $$select p.oid::regprocedure::text from pg_proc p
     where p.pronamespace = 'private'::regnamespace and p.prosecdef
       and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) c where c like 'search_path=%')$$,
  'every security-definer function in private pins its search_path');

select is_empty(
  $$select p.oid::regprocedure::text from pg_proc p
     where p.pronamespace = 'private'::regnamespace and p.prosecdef
       and not ('search_path=""' = any (coalesce(p.proconfig, '{}')))$$,
  'every security-definer function in private runs with an empty search_path (fully qualified names)');

-- The function's login: sigyl_api may execute by name only what the function calls as itself
-- (the keyring and KEK rotation, the token lookup, the health probe); the rest it reaches by
-- set role. No REST role may call those.
select results_eq(
  $$select p.oid::regprocedure::text from pg_proc p
     where p.pronamespace = 'private'::regnamespace
       and has_function_privilege('sigyl_api', p.oid, 'EXECUTE')
       and not has_function_privilege('authenticated', p.oid, 'EXECUTE')
       and not has_function_privilege('service_role', p.oid, 'EXECUTE')
     order by 1$$,
  $$values ('private.begin_key_rotation()'), ('private.deployment_of_token(bytea)'),
           ('private.finish_key_rotation()'), ('private.health_probe(text[])'), ('private.key_status()'),
           ('private.load_keyring()'), ('private.retire_key(integer)'),
           ('private.rewrap_batch_source(integer,uuid,integer)'), ('private.rewrap_remaining()'),
           ('private.store_rewrapped(integer,jsonb)')$$,
  'sigyl_api may execute by name exactly the helpers the function calls as its own login');
select is_empty(
  $$select p.oid::regprocedure::text from pg_proc p
     where p.pronamespace = 'private'::regnamespace
       and p.proname in ('load_keyring', 'health_probe', 'deployment_of_token', 'begin_key_rotation', 'store_rewrapped')
       and (has_function_privilege('authenticator', p.oid, 'EXECUTE') or has_function_privilege('anon', p.oid, 'EXECUTE'))$$,
  'neither authenticator nor anon may execute the helpers of the function''s own login');
select ok(not has_schema_privilege('authenticator', 'private', 'USAGE'),
  'PostgREST''s login itself has no usage on schema private');

select * from finish();
ROLLBACK;
