-- The audit trail's hash chains: every row is linked to the previous row of its backend's
-- chain by the insert trigger, whoever inserts; verification and export are for the service
-- role only; the chain heads are nobody's to touch over the API; and a row changed by the
-- owner with triggers bypassed is reported where it was changed.
BEGIN;
set local search_path = public, extensions;
select plan(26);

-- Who may call what ------------------------------------------------------------------------

select ok(has_function_privilege('service_role', 'private.verify_audit_chain(int, bigint, text, bigint, int)', 'execute'),
  'the service role may verify the chains');
select ok(has_function_privilege('service_role', 'private.export_audit(bigint, int)', 'execute'),
  'the service role may export the trail');
select ok(has_function_privilege('service_role', 'private.audit_chain_heads()', 'execute'),
  'the service role may read the chain heads (the checkpoint)');
select ok(not has_function_privilege(r, f, 'execute'),
  format('%s may not execute %s', r, f))
  from unnest(array['authenticated', 'anon']) r,
       unnest(array['private.verify_audit_chain(int, bigint, text, bigint, int)', 'private.export_audit(bigint, int)',
                    'private.audit_chain_heads()']) f;
select ok(not has_function_privilege('service_role', f, 'execute'),
  format('nobody but the owner may execute %s', f))
  from unnest(array['private.audit_link(bytea, bigint, public.secret_access_logs)', 'private.chain_audit_row()',
                    'private.audit_chain_of(int)']) f;
select ok(not has_table_privilege(r, 'private.audit_chains', p),
  format('%s holds no %s on the chain heads', r, p))
  from unnest(array['authenticated', 'service_role']) r, unnest(array['select', 'update']) p;

-- Rows are chained by the trigger -----------------------------------------------------------

select tests.create_user('alice@example.com') as alice \gset
select tests.create_secret_as(:'alice', 'ALICE_API_KEY') as alice_secret \gset
select tests.create_secret_as(:'alice', 'ALICE_DB_URL') as alice_db \gset

select is(
  (select count(*)::int from public.secret_access_logs where chain is distinct from pg_backend_pid() % 256 and secret_id in (:'alice_secret', :'alice_db')),
  0, 'rows written in this session belong to this backend''s chain, its pid modulo 256');
select is(
  (select array_agg(chain_seq order by id) = array_agg(chain_seq order by chain_seq)
      and max(chain_seq) - min(chain_seq) + 1 = count(*)
     from public.secret_access_logs where chain = pg_backend_pid() % 256),
  true, 'the chain''s positions follow the ids with no gap');
select is(
  (select row_count from private.audit_chains where chain = pg_backend_pid() % 256),
  (select max(chain_seq) from public.secret_access_logs where chain = pg_backend_pid() % 256),
  'the chain''s head counts its rows');
select is(
  (select count(*)::int from pg_locks l where l.pid = pg_backend_pid() and l.locktype = 'advisory' and l.objsubid = 2
      and ((l.classid = (-659277875)::oid and l.objid = pg_backend_pid() % 256)
        or (l.classid = 254592267::oid and l.objid::bigint = current_setting('sigyl.audit_first_id')::bigint >> 31)
        or (l.classid = (-1564307646)::oid and l.objid::bigint = current_setting('sigyl.audit_first_id')::bigint & 2147483647))),
  3, 'the transaction holds its chain''s lock and advertises its first id to the export');

-- Verification, as the service role ---------------------------------------------------------

select tests.authenticate_as_service_role();
select is(
  (select row(reason, finished)::text from private.verify_audit_chain(null, null, null, null, 100000)),
  '(,t)', 'an untouched trail verifies in one step as the service role');
select is(
  (select row(checked, finished)::text from private.verify_audit_chain(pg_backend_pid() % 256, null, null, 0, 1)),
  '(1,f)', 'a step checks no more rows than its budget and says where to resume');
select ok((select count(*) > 0 from private.export_audit(0, 1000)), 'the service role exports rows');
select tests.clear_authentication();

select tests.authenticate_as('alice@example.com');
select throws_ok('select * from private.verify_audit_chain(null, null, null, null, 10)', '42501', null,
  'a signed-in user cannot run the verification');
select throws_ok('select * from private.export_audit(0, 10)', '42501', null,
  'a signed-in user cannot export the trail');
select tests.clear_authentication();

-- The owner, triggers bypassed ---------------------------------------------------------------

select id as edited from public.secret_access_logs where secret_id = :'alice_secret' order by id limit 1 \gset
set local session_replication_role = replica;
update public.secret_access_logs set ip = '198.51.100.9' where id = :edited;
set local session_replication_role = origin;
select is(
  (select row(broken_chain = pg_backend_pid() % 256, broken_id, reason)::text
     from private.verify_audit_chain(null, null, null, null, 100000)),
  format('(t,%s,altered)', :edited), 'an edited row is reported as altered, at its id');

ROLLBACK;
