-- Idempotency keys: the table is reachable only through its helpers; a key is stored as a
-- hash of (caller, key digest), never as sent; a claim reports what an earlier request did
-- (claimed, in_flight, replay, mismatch) for the same caller only; the purge removes expired
-- keys only, one bounded batch per run.
BEGIN;
set local search_path = public, extensions;
select plan(35);

select tests.create_user('alice@example.com') as alice \gset
select tests.create_user('bob@example.com') as bob \gset
select extensions.digest('alice-key-1', 'sha256') as digest \gset
select extensions.digest('request-a', 'sha256') as fp_a \gset
select extensions.digest('request-b', 'sha256') as fp_b \gset

-- Privileges --------------------------------------------------------------------------------

select table_privs_are('private', 'idempotency_keys', r, '{}'::text[],
         format('%s holds no privilege on private.idempotency_keys', r))
  from unnest(array['anon', 'authenticated', 'service_role']) r;

select function_privs_are('private', f.name, f.args, r.role, r.privs,
         format('%s %s execute private.%s', r.role, case when r.privs = '{}' then 'cannot' else 'may' end, f.name))
  from (values ('claim_idempotency_key', array['bytea', 'bytea']::name[]),
               ('store_idempotent_response', array['bytea', 'integer', 'jsonb', 'integer', 'bytea', 'bytea', 'bytea', 'integer']::name[]),
               ('release_idempotency_key', array['bytea']::name[])) f(name, args)
  cross join (values ('anon', '{}'::text[]), ('authenticated', '{EXECUTE}'::text[]), ('service_role', '{EXECUTE}'::text[])) r(role, privs);

select function_privs_are('private', f.name, f.args, r.role, '{}'::text[],
         format('%s cannot execute private.%s', r.role, f.name))
  from (values ('idempotency_key_hash', array['bytea']::name[]),
               ('purge_idempotency_keys', array['timestamp with time zone']::name[])) f(name, args)
  cross join (values ('anon'), ('authenticated'), ('service_role')) r(role);

-- Claims ------------------------------------------------------------------------------------

select tests.authenticate_as('alice@example.com');
select is((select outcome from private.claim_idempotency_key(:'digest', :'fp_a')), 'claimed',
  'a new key is claimed');
select is((select outcome from private.claim_idempotency_key(:'digest', :'fp_a')), 'in_flight',
  'the same key while its answer is not stored is in flight');
select throws_ok('select key_hash from private.idempotency_keys', '42501', null,
  'a signed-in user cannot read the table itself');
select lives_ok(format($$select private.store_idempotent_response(%L, 201, '{"etag": "\"1\""}', 1, %L, %L, %L, 1)$$,
  :'digest', tests.dummy_bytes(12), tests.dummy_bytes(40), tests.dummy_bytes(60)), 'the answer is stored on the claim');
select results_eq(
  format($$select outcome, status, headers->>'etag' from private.claim_idempotency_key(%L, %L)$$, :'digest', :'fp_a'),
  $$values ('replay'::text, 201, '"1"'::text)$$,
  'the same key and request replays the stored answer');
select is((select outcome from private.claim_idempotency_key(:'digest', :'fp_b')), 'mismatch',
  'the same key with another request is a mismatch');
select throws_ok(format($$select private.store_idempotent_response(%L, 200, '{}', 1, %L, %L, %L, 1)$$,
  :'digest', tests.dummy_bytes(12), tests.dummy_bytes(40), tests.dummy_bytes(60)), 'S0409', null,
  'an answer already stored is never overwritten');

select tests.authenticate_as('bob@example.com');
select is((select outcome from private.claim_idempotency_key(:'digest', :'fp_b')), 'claimed',
  'another user''s same key is another key');
select tests.authenticate_as_service_role();
select is((select outcome from private.claim_idempotency_key(:'digest', :'fp_b')), 'claimed',
  'the service role''s same key is another key');
select lives_ok(format('select private.release_idempotency_key(%L)', :'digest'), 'the service role releases its claim');
select tests.clear_authentication();

select is((select count(*)::int from private.idempotency_keys where key_hash = :'digest'), 0,
  'the key digest itself is stored nowhere');
select is((select count(*)::int from private.idempotency_keys
            where key_hash = extensions.digest(convert_to('user:' || :'alice', 'UTF8') || '\x00'::bytea || :'digest'::bytea, 'sha256')),
  1, 'alice''s key is stored as SHA-256 of her id and the digest');
select is((select count(*)::int from private.idempotency_keys
            where key_hash = extensions.digest(convert_to('service', 'UTF8') || '\x00'::bytea || :'digest'::bytea, 'sha256')),
  0, 'a released claim is gone');

-- Purge -------------------------------------------------------------------------------------

update private.settings set job_batch_size = 2;
delete from private.idempotency_keys;
insert into private.idempotency_keys (key_hash, fingerprint, expires_at)
select extensions.digest('k' || i, 'sha256'), :'fp_a', timestamptz '2000-01-01' + i * interval '1 hour'
  from generate_series(1, 3) i;
insert into private.idempotency_keys (key_hash, fingerprint) values (extensions.digest('live', 'sha256'), :'fp_a');

select is(private.purge_idempotency_keys(), 2, 'a run removes one batch of expired keys: two');
select is(private.purge_idempotency_keys(), 1, 'the next run removes the rest');
select is(private.purge_idempotency_keys(), 0, 'then nothing is left to purge');
select results_eq('select key_hash from private.idempotency_keys', $$select extensions.digest('live', 'sha256')$$,
  'the key within its 24 hours stays');

select * from finish();
ROLLBACK;
