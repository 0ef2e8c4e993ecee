-- KEK rotation in the database: the helpers are the connection owner's alone, a rotation
-- creates one key and resumes instead of creating another, the re-wrap changes only the
-- wrapped DEK, retirement waits for the last DEK, and a retired KEK wraps nothing new.
BEGIN;
set local search_path = public, extensions;
select plan(60);

-- Nobody but the owner reaches the rotation helpers or its bookkeeping --------------------

select function_privs_are('private', f.name, f.args, r.role, '{}'::text[],
         format('%s cannot execute private.%s', r.role, f.name))
  from (values ('key_rotation_lock', '{}'::name[]),
               ('refuse_retired_kek', '{}'::name[]),
               ('begin_key_rotation', '{}'::name[]),
               ('rewrap_batch_source', array['integer', 'uuid', 'integer']::name[]),
               ('store_rewrapped', array['integer', 'jsonb']::name[]),
               ('finish_key_rotation', '{}'::name[]),
               ('key_status', '{}'::name[]),
               ('retire_key', array['integer']::name[]),
               ('count_kek_wraps', '{}'::name[])) f(name, args)
  cross join (values ('anon'), ('authenticated'), ('service_role')) r(role);

select table_privs_are('private', 'key_rotations', r, '{}'::text[],
         format('%s holds no privilege on private.key_rotations', r))
  from unnest(array['authenticated', 'service_role']) r;
select table_privs_are('private', 'kek_wrap_counts', r, '{}'::text[],
         format('%s holds no privilege on private.kek_wrap_counts', r))
  from unnest(array['authenticated', 'service_role']) r;

select tests.authenticate_as_service_role();
select throws_ok('select * from private.begin_key_rotation()', '42501', null,
  'the service role cannot start a rotation in SQL');
select tests.clear_authentication();

-- A rotation ------------------------------------------------------------------------------

select tests.create_user('rotor@example.com') as owner_id \gset
select tests.create_secret_as(:'owner_id', 'ROTATED_ONE') as s1 \gset
select tests.create_secret_as(:'owner_id', 'ROTATED_TWO') as s2 \gset
select max(version) as v0 from private.key_versions \gset

select results_eq('select from_version, to_version, created from private.begin_key_rotation()',
  format('values (%s, %s, true)', :v0, :v0 + 1),
  'a rotation creates the next KEK version');
select is((select status from private.key_versions where version = :v0 + 1), 'active', 'the new KEK is active');
select is((select status from private.key_versions where version = :v0), 'retiring', 'the old KEK is retiring');
select is((select count(*)::int from vault.secrets where name = 'sigyl_kek_v' || (:v0 + 1)), 1,
  'the new KEK lives in Vault under its name');
select is(length(decode((select material from private.load_keyring() where version = :v0 + 1), 'base64')), 32,
  'the new KEK is 32 bytes');
select results_eq('select from_version, to_version, created from private.begin_key_rotation()',
  format('values (%s, %s, false)', :v0, :v0 + 1),
  'a second call resumes the open rotation instead of creating a key');

select is((select count(*)::int from private.rewrap_batch_source(10) where secret_id in (:'s1', :'s2')), 2,
  'the batch source returns the versions still under the old KEK');
select is((select count(*)::int from private.rewrap_batch_source(1)), 1, 'and honours its limit');

select iv as iv_before, ciphertext as ct_before from public.secret_versions where secret_id = :'s1' \gset
select is(
  private.store_rewrapped(:v0 + 1, jsonb_build_array(jsonb_build_object(
    'secret_id', :'s1', 'version', 1, 'from_version', :v0, 'wrapped_dek', encode(tests.dummy_bytes(60), 'base64')))),
  1, 'a re-wrapped DEK is stored');
select results_eq(format('select iv, ciphertext, kek_version from public.secret_versions where secret_id = %L', :'s1'),
  format('values (%L::bytea, %L::bytea, %s)', :'iv_before', :'ct_before', :v0 + 1),
  'the re-wrap changed the KEK version, not the ciphertext or its IV');
select throws_ok(
  format($$select private.store_rewrapped(%s, '[]')$$, :v0),
  'S0409', 'kek_not_active', 'nothing is re-wrapped under a key that is not active');

select throws_ok(format('select * from private.retire_key(%s)', :v0), 'S0409', 'key_in_use',
  'a KEK that still wraps a DEK cannot be retired');
select throws_ok(format('select * from private.retire_key(%s)', :v0 + 1), 'S0409', 'key_active',
  'the active KEK cannot be retired');
select throws_ok('select * from private.retire_key(9999)', 'S0404', 'key_not_found', 'an unknown KEK cannot be retired');

-- Nothing else may wrap under the old key, so only the two fixtures hold it up.
delete from public.secrets where id in (
  select sv.secret_id from public.secret_versions sv where sv.kek_version < :v0 + 1 and sv.secret_id not in (:'s1', :'s2'));
select results_eq('select completed from private.finish_key_rotation()', 'values (false)',
  'the rotation cannot finish while a DEK is under the old key');
select ok((select completed_at is null from private.key_rotations where to_version = :v0 + 1), 'and stays open');

select throws_ok(format($$select private.store_rewrapped(%s, jsonb_build_array(jsonb_build_object(
    'secret_id', %L, 'version', 1, 'from_version', %s, 'wrapped_dek', encode(tests.dummy_bytes(60), 'base64'))))$$,
  :v0 + 1, :'s2', :v0 + 1), 'S0500', 'rewrap_unverified',
  'a re-wrap of a row that is not under the key it names is refused');
select throws_ok(format($$select private.store_rewrapped(%s, jsonb_build_array(jsonb_build_object(
    'secret_id', %L, 'version', 1, 'from_version', %s, 'wrapped_dek',
    (select encode(sv.wrapped_dek, 'base64') from public.secret_versions sv where sv.secret_id = %L and sv.version = 1))))$$,
  :v0 + 1, :'s2', :v0, :'s2'), 'S0500', 'rewrap_unverified',
  'so is a "re-wrap" identical to the wrapping it replaces');
select lives_ok(format($$select private.store_rewrapped(%s, jsonb_build_array(jsonb_build_object(
    'secret_id', %L, 'version', 1, 'from_version', %s, 'wrapped_dek', encode(tests.dummy_bytes(60), 'base64'))))$$,
  :v0 + 1, :'s2', :v0), 'the last DEK is re-wrapped');
select is((select wraps from private.key_status() where version = :v0 + 1), 2::bigint,
  'the new KEK counts its two re-wraps');
select ok((select wraps from private.key_status() where version = :v0) >= 2,
  'the old KEK keeps the count of its wraps, purged secrets included');
select results_eq('select completed, retired from private.finish_key_rotation()',
  format('values (true, array[%s])', :v0),
  'with nothing left under it, the old KEK is retired and the rotation completes');
select is((select count(*)::int from public.secret_access_logs
            where action = 'key_rotated' and secret_id is null
              and details = jsonb_build_object('fromVersion', :v0, 'toVersion', :v0 + 1, 'rewrapped', 2)), 1,
  'one key_rotated audit row records the rotation');
select is((select retired_at is not null from private.key_versions where version = :v0), true, 'retiredAt is set');
select results_eq('select version from private.load_keyring()', format('values (%s)', :v0 + 1),
  'the keyring loads the active KEK only, never the retired one');
select results_eq(format('select status, dek_count from private.retire_key(%s)', :v0), $$values ('retired', 0)$$,
  'retiring a retired KEK changes nothing');

-- A retired KEK wraps nothing new -----------------------------------------------------------

select throws_ok(
  format($$insert into public.secret_versions (secret_id, version, iv, ciphertext, wrapped_dek, kek_version)
           values (%L, 2, tests.dummy_bytes(12), tests.dummy_bytes(33), tests.dummy_bytes(60), %s)$$, :'s1', :v0),
  'S0409', 'kek_retired', 'no version can be inserted under a retired KEK');
select throws_ok(
  format('update public.secret_versions set kek_version = %s where secret_id = %L', :v0, :'s1'),
  'S0409', 'kek_retired', 'no DEK can be moved back under a retired KEK');

select * from finish();
ROLLBACK;
