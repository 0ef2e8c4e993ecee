-- Deployments over REST: owners see their own deployments and bindings and nothing else;
-- nobody writes bindings or reads tokens around the function; the deploy trigger checks a
-- status change made in plain SQL, as the platform makes it.
BEGIN;
set local search_path = public, extensions;
select plan(29);

select tests.create_user('dana@example.com') as dana \gset
select tests.create_user('eve@example.com') as eve \gset
select tests.create_secret_as(:'dana', 'DANA_KEY') as key \gset

insert into public.deployments (user_id, name, required_env)
  values (:'dana', 'dana-mcp', '{DANA_KEY}') returning id as dep \gset

select table_privs_are('public', 'deployment_secrets', 'authenticated', array['SELECT'],
  'authenticated may only read bindings');
select table_privs_are('public', 'deployment_secrets', 'anon', '{}'::text[], 'anon holds nothing on bindings');
select table_privs_are('private', 'deployment_tokens', 'authenticated', '{}'::text[], 'authenticated holds nothing on tokens');
select table_privs_are('private', 'deployment_tokens', 'service_role', '{}'::text[], 'nor does the service role');
select table_privs_are('public', 'deployments', 'authenticated', array['SELECT'],
  'authenticated may only read deployments (the platform writes them)');

-- Dana binds through the helper, as the function does.
select tests.authenticate_as('dana@example.com');
select lives_ok(format($$select private.replace_bindings(%L, '[{"env_name":"DANA_KEY","secret_id":"%s"}]')$$, :'dep', :'key'),
  'the owner binds through the helper');
select results_eq(format('select env_name from public.deployment_secrets where deployment_id = %L', :'dep'),
  $$values ('DANA_KEY')$$, 'the owner sees its binding');
select throws_ok(format($$insert into public.deployment_secrets (deployment_id, env_name, secret_id) values (%L, 'X', %L)$$, :'dep', :'key'),
  '42501', null, 'the owner cannot insert a binding directly');

select tests.authenticate_as('eve@example.com');
select is_empty(format('select 1 from public.deployments where id = %L', :'dep'), 'a stranger does not see the deployment');
select is_empty(format('select 1 from public.deployment_secrets where deployment_id = %L', :'dep'), 'nor its bindings');
select throws_ok(format($$select private.replace_bindings(%L, '[]')$$, :'dep'), 'S0404', null,
  'a stranger cannot rebind it');
select results_eq(format($$select outcome from private.resolve_deployment_env(%L, null)$$, :'dep'),
  $$values ('deployment_not_found')$$, 'a stranger without a token gets no env');

-- Eve, granted use, binds Dana's key to her own deployment, but only to follow its current
-- version: a pin would let her deploy a version Dana replaced.
select tests.clear_authentication();
insert into public.secret_permissions (secret_id, user_id, permission, granted_by) values (:'key', :'eve', 'use', :'dana');
insert into public.deployments (user_id, name, required_env)
  values (:'eve', 'eve-mcp', '{DANA_KEY}') returning id as eve_dep \gset
select tests.authenticate_as('eve@example.com');
select throws_ok(
  format($$select private.replace_bindings(%L, '[{"env_name":"DANA_KEY","secret_id":"%s","version":1}]')$$, :'eve_dep', :'key'),
  'S0403', 'pin_requires_read: the deployment owner holds only use on the secret bound to DANA_KEY; bind it without a version, to follow the current one',
  'a use grantee cannot pin a version, even calling the helper in SQL');
select is_empty(format('select 1 from public.deployment_secrets where deployment_id = %L', :'eve_dep'),
  'and nothing is bound');
select lives_ok(format($$select private.replace_bindings(%L, '[{"env_name":"DANA_KEY","secret_id":"%s"}]')$$, :'eve_dep', :'key'),
  'unpinned, the use grantee binds it');

-- The platform, in plain SQL: a valid deployment deploys and pins the version.
select tests.clear_authentication();
select lives_ok(format($$update public.deployments set status = 'deploying' where id = %L$$, :'dep'),
  'a valid deployment moves to deploying');
select is((select resolved_version from public.deployment_secrets where deployment_id = :'dep'), 1,
  'and its binding is pinned to the current version');
-- A caller holding the env's fingerprint gets not_modified: nothing is read and nothing audited.
select tests.authenticate_as_service_role();
select fingerprint as fp from private.resolve_deployment_env(:'dep', null) \gset
select tests.clear_authentication();
select count(*) as accessed from public.secret_access_logs where deployment_id = :'dep' and action = 'accessed' \gset
select is(:'accessed'::int, 1, 'the env read wrote one accessed row');
select tests.authenticate_as_service_role();
select results_eq(format($$select outcome, env_name, ciphertext, fingerprint from private.resolve_deployment_env(%L, null, array['other', %L])$$, :'dep', :'fp'),
  format($$values ('not_modified', null::text, null::bytea, %L)$$, :'fp'), 'the current fingerprint: not_modified, no value');
select results_eq(format($$select outcome from private.resolve_deployment_env(%L, null, array['*'])$$, :'dep'),
  $$values ('not_modified')$$, '* matches any current env');
select tests.clear_authentication();
select is((select count(*)::int from public.secret_access_logs where deployment_id = :'dep' and action = 'accessed'), 1,
  'and neither wrote an accessed row');
insert into public.deployments (user_id, name, required_env)
  values (:'dana', 'dana-broken', '{NOT_BOUND}') returning id as broken \gset
select throws_ok(format($$update public.deployments set status = 'deploying' where id = %L$$, :'broken'),
  'S0409', format('deployment_invalid: deployment %s cannot deploy: NOT_BOUND: required but not bound', :'broken'),
  'an invalid deployment is refused with every problem named');

-- The list helper: each caller its own deployments, the service role every one (or one owner's).
select tests.authenticate_as('dana@example.com');
select results_eq($$select name, binding_count, unbound_env from private.list_deployments(null, null, null, 10)$$,
  $$values ('dana-broken', 0, '{NOT_BOUND}'::text[]), ('dana-mcp', 1, '{}'::text[])$$,
  'an owner lists its own deployments by name, with their bindings and unbound env names');
select results_eq(format($$select name from private.list_deployments(null, null, %L, 10)$$, :'broken'),
  $$values ('dana-mcp')$$, 'a page starts after the given deployment');
select throws_ok(format($$select * from private.list_deployments(null, null, %L, 10)$$, :'eve_dep'),
  'S0400', 'invalid_cursor', 'a cursor naming a deployment the caller does not see is refused');
select tests.authenticate_as('eve@example.com');
select results_eq($$select name from private.list_deployments(null, null, null, 10)$$,
  $$values ('eve-mcp')$$, 'another user lists only its own');
select is_empty(format($$select 1 from private.list_deployments(%L, null, null, 10)$$, :'dana'),
  'and nothing when it asks for someone else''s');
select tests.authenticate_as_service_role();
select results_eq(format($$select name from private.list_deployments(null, null, null, 10) where user_id in (%L, %L)$$, :'dana', :'eve'),
  $$values ('dana-broken'), ('dana-mcp'), ('eve-mcp')$$, 'the service role lists every owner''s');
select tests.clear_authentication();
insert into public.deployments (user_id, name, required_env) values (:'eve', 'eve-twice', '{B,A,B}');
select tests.authenticate_as('eve@example.com');
select results_eq($$select unbound_env from private.list_deployments(null, null, null, 10) where name = 'eve-twice'$$,
  $$values ('{A,B}'::text[])$$, 'an env name required twice is listed once');
select tests.clear_authentication();

select * from finish();
ROLLBACK;
