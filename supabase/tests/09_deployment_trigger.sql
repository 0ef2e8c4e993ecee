-- The deploy trigger, with the platform moving statuses in plain SQL: a deployment is checked
-- and its versions pinned whenever it starts being served (a move into deploying or running
-- from a status that is neither, or an INSERT with either), and deploying → running keeps the
-- versions pinned at deploying. A move back into deploying (a redeploy) checks and pins again.
BEGIN;
set local search_path = public, extensions;
select plan(24);

select tests.create_user('dana@example.com') as dana \gset
select tests.create_secret_as(:'dana', 'DANA_KEY') as key \gset
select tests.clear_authentication();

insert into public.deployments (user_id, name, required_env)
  values (:'dana', 'dana-unbound', '{NOT_BOUND}') returning id as broken \gset
insert into public.deployments (user_id, name, required_env)
  values (:'dana', 'dana-mcp', '{DANA_KEY}') returning id as dep \gset
insert into public.deployment_secrets (deployment_id, env_name, secret_id)
  values (:'dep', 'DANA_KEY', :'key');

-- Straight to running ---------------------------------------------------------------------

select throws_ok(format($$update public.deployments set status = 'running' where id = %L$$, :'broken'),
  'S0409', format('deployment_invalid: deployment %s cannot deploy: NOT_BOUND: required but not bound', :'broken'),
  'an invalid deployment moved from pending straight to running is refused with every problem named');
select is((select status from public.deployments where id = :'broken'), 'pending', 'and stays pending');

select throws_ok(
  format($$insert into public.deployments (user_id, name, required_env, status) values (%L, 'inserted-running', '{NOT_BOUND}', 'running')$$, :'dana'),
  'S0409', null, 'an invalid deployment inserted as running is refused');
select is_empty($$select 1 from public.deployments where name = 'inserted-running'$$, 'and no row is left');
select throws_ok(
  format($$insert into public.deployments (user_id, name, required_env, status) values (%L, 'inserted-deploying', '{NOT_BOUND}', 'deploying')$$, :'dana'),
  'S0409', null, 'an invalid deployment inserted as deploying is refused, as before');

select lives_ok(format($$update public.deployments set status = 'running' where id = %L$$, :'dep'),
  'a valid deployment moves from pending straight to running');
select is((select resolved_version from public.deployment_secrets where deployment_id = :'dep'), 1,
  'and its binding is pinned to the current version');

-- A failed or stopped deployment started again is checked again.
update public.deployments set status = 'stopped' where id = :'dep';
update public.secrets set is_active = false where id = :'key';
select throws_ok(format($$update public.deployments set status = 'running' where id = %L$$, :'dep'),
  'S0409', null, 'a stopped deployment whose secret went inactive cannot start running again');
update public.secrets set is_active = true where id = :'key';

-- Deploying, then running: the versions pinned at deploying hold ---------------------------

update public.deployments set status = 'pending' where id = :'dep';
update public.deployment_secrets set resolved_version = null where deployment_id = :'dep';
select lives_ok(format($$update public.deployments set status = 'deploying' where id = %L$$, :'dep'),
  'the deployment moves to deploying');
select is((select resolved_version from public.deployment_secrets where deployment_id = :'dep'), 1,
  'which pins version 1');

-- A new value while it deploys (as postgres: a valid-shaped version 2).
insert into public.secret_versions (secret_id, version, iv, ciphertext, wrapped_dek, kek_version)
  values (:'key', 2, tests.dummy_bytes(12), tests.dummy_bytes(33), tests.dummy_bytes(60), 1);
update public.secrets set current_version = 2 where id = :'key';

select lives_ok(format($$update public.deployments set status = 'running' where id = %L$$, :'dep'),
  'deploying → running succeeds');
select is((select resolved_version from public.deployment_secrets where deployment_id = :'dep'), 1,
  'and keeps the version pinned at deploying, not the newer current one');
select results_eq(format($$select version from private.resolve_deployment_env(%L, null) where outcome = 'ok'$$, :'dep'),
  $$values (1)$$, 'so the running deployment is served the version it was deployed with');

-- Nor does deploying → running re-check: what the rollout was checked against is what runs
-- (env resolution still refuses a deployment with problems on every read).
update public.deployments set status = 'deploying' where id = :'dep';
update public.secrets set is_active = false where id = :'key';
select lives_ok(format($$update public.deployments set status = 'running' where id = %L$$, :'dep'),
  'deploying → running is not checked again');
update public.secrets set is_active = true where id = :'key';

-- running → running (another column changes) neither checks nor pins.
select lives_ok(format($$update public.deployments set status = 'running', name = 'renamed' where id = %L$$, :'dep'),
  'an update that leaves it running changes nothing of the bindings');

-- A redeploy from running re-pins -----------------------------------------------------------

select is((select resolved_version from public.deployment_secrets where deployment_id = :'dep'), 2,
  'the redeploy above (running → deploying) pinned the then-current version 2');
insert into public.secret_versions (secret_id, version, iv, ciphertext, wrapped_dek, kek_version)
  values (:'key', 3, tests.dummy_bytes(12), tests.dummy_bytes(33), tests.dummy_bytes(60), 1);
update public.secrets set current_version = 3 where id = :'key';
select lives_ok(format($$update public.deployments set status = 'deploying' where id = %L$$, :'dep'),
  'running → deploying (a redeploy) is checked');
select is((select resolved_version from public.deployment_secrets where deployment_id = :'dep'), 3,
  'and pins the current version again');

-- Below read, a binding cannot pin ---------------------------------------------------------
-- Ugo holds use on Dana's key (versions 1 to 3, 3 current). A binding written in plain SQL,
-- around the helper that refuses it, with a pin to the replaced version 1:

select tests.create_user('ugo@example.com') as ugo \gset
select tests.clear_authentication();
insert into public.secret_permissions (secret_id, user_id, permission, granted_by) values (:'key', :'ugo', 'use', :'dana');
insert into public.deployments (user_id, name, required_env)
  values (:'ugo', 'ugo-mcp', '{DANA_KEY}') returning id as ugo_dep \gset
insert into public.deployment_secrets (deployment_id, env_name, secret_id, pinned_version)
  values (:'ugo_dep', 'DANA_KEY', :'key', 1);
select throws_ok(format($$update public.deployments set status = 'deploying' where id = %L$$, :'ugo_dep'),
  'S0409', format('deployment_invalid: deployment %s cannot deploy: DANA_KEY: the deployment owner holds only use on the bound secret, so the binding cannot pin a version; bind it without one', :'ugo_dep'),
  'a deployment whose owner holds only use cannot deploy a pinned version');
select is((select status from public.deployments where id = :'ugo_dep'), 'pending', 'and stays pending');

update public.deployment_secrets set pinned_version = null where deployment_id = :'ugo_dep';
select lives_ok(format($$update public.deployments set status = 'deploying' where id = %L$$, :'ugo_dep'),
  'unpinned, it deploys');
select is((select resolved_version from public.deployment_secrets where deployment_id = :'ugo_dep'), 3,
  'with the current version');

-- With read, the version is Ugo's to choose.
update public.deployments set status = 'stopped' where id = :'ugo_dep';
update public.secret_permissions set permission = 'read' where secret_id = :'key' and user_id = :'ugo';
update public.deployment_secrets set pinned_version = 1 where deployment_id = :'ugo_dep';
select lives_ok(format($$update public.deployments set status = 'deploying' where id = %L$$, :'ugo_dep'),
  'with read, a pinned version deploys');
select is((select resolved_version from public.deployment_secrets where deployment_id = :'ugo_dep'), 1,
  'and is the version it gets');

select * from finish();
ROLLBACK;
