-- Audit: append-only log written by triggers (changes) and by the value-read helper (reads),
-- in the same transaction as the event, so there is no event without its row.

create type public.audit_action as enum (
  'created', 'accessed', 'updated', 'rotated', 'deleted', 'restored', 'purged',
  'shared', 'unshared', 'expired', 'denied', 'key_rotated', 'bound', 'unbound',
  'token_issued', 'token_revoked'
);
create type public.audit_actor_type as enum ('user', 'service', 'deployment', 'system');

create table public.secret_access_logs (
  id bigint generated always as identity primary key,
  secret_id uuid,
  secret_name text,
  owner_id uuid,
  actor_id uuid,
  actor_type public.audit_actor_type not null,
  action public.audit_action not null,
  version int,
  deployment_id uuid,
  ip text,
  user_agent text,
  request_id text,
  outcome text not null default 'success' check (outcome in ('success', 'denied')),
  details jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  -- Set by private.chain_audit_row() on every insert, whatever the inserter supplies; null only
  -- where that trigger was bypassed, which verification reports. See "Tamper evidence" below.
  chain int,
  chain_seq bigint,
  chain_hash bytea
);
comment on table public.secret_access_logs is
  'Audit trail. Append-only for every role; rows outlive their secret (no foreign key). Never holds a value.';
comment on column public.secret_access_logs.secret_id is 'The secret; kept after the secret is purged, hence no foreign key.';
comment on column public.secret_access_logs.secret_name is 'Name at the time of the event, so the trail reads after a purge.';
comment on column public.secret_access_logs.owner_id is 'Owner at the time, so owners keep seeing the trail of purged secrets.';
comment on column public.secret_access_logs.ip is 'First x-forwarded-for hop of request.headers, as PostgREST and the function set it.';
comment on column public.secret_access_logs.details is 'Structured context (changed fields, grantee, reason). Never a value.';
comment on column public.secret_access_logs.chain is 'The hash chain the row belongs to, 0 to 255: the inserting backend''s pid modulo 256 (see private.audit_chain_of).';
comment on column public.secret_access_logs.chain_seq is 'Position in its chain, from 1, with no gaps.';
comment on column public.secret_access_logs.chain_hash is 'sha256 of the previous hash of its chain and of this row''s canonical encoding (private.audit_link).';

create index secret_access_logs_by_secret on public.secret_access_logs (secret_id, id);
create index secret_access_logs_by_actor on public.secret_access_logs (actor_id, id);
create index secret_access_logs_by_owner on public.secret_access_logs (owner_id, id);
-- Verification walks each chain in id order; rows outside every chain are found without a scan.
create index secret_access_logs_by_chain on public.secret_access_logs (chain, id);
create index secret_access_logs_unchained on public.secret_access_logs (id) where chain is null;

-- Append-only for everyone, the table owner included.
create or replace function private.forbid_audit_change() returns trigger
language plpgsql set search_path = ''
as $$
begin
  raise exception 'the audit log is append-only' using errcode = 'P0001';
end
$$;
comment on function private.forbid_audit_change() is
  'Trigger: the audit trail is append-only, for the table owner too, so no role can rewrite or erase what happened.';
create trigger secret_access_logs_no_update before update or delete on public.secret_access_logs
  for each row execute function private.forbid_audit_change();
create trigger secret_access_logs_no_truncate before truncate on public.secret_access_logs
  for each statement execute function private.forbid_audit_change();

-- Tamper evidence ------------------------------------------------------------------------
-- The triggers above stop every role but the table owner, who can `set session_replication_role
-- = replica` or `alter table … disable trigger` and then delete, edit or truncate rows. That
-- cannot be prevented inside the database; it can be made visible. Every row carries a hash
-- chained to its predecessor, and verification (private.verify_audit_chain) recomputes it.
--
-- Several chains, not one. Every value read inserts its row in the read's own transaction, so
-- a single global chain ("the previous row of the table") would make every read wait for the
-- one before it to commit: reads would run one at a time. Instead a row joins one of 256
-- chains, the inserting backend's pid modulo 256 (private.audit_chain_of). Not one chain per
-- pid: every new connection (an edge cold start, a pool's idle close, each pg_cron run) would
-- add a chain for good, and the heads, the checkpoint and the verification would grow without
-- end. 256 keeps the checkpoint small (256 heads, about 45 kB of JSON) and verification's
-- per-chain cost negligible, while two backends share a chain only when their pids are equal
-- modulo 256: pids are handed out in turn, so the backends of one pool rarely do.
-- Two transactions on one chain serialise on a transaction-level advisory lock on it (key
-- pair (-659277875, chain), -659277875 = hashtext('sigyl:audit_chain'): the two-int key space,
-- apart from the bigint locks used elsewhere), taken by the row trigger: only colliding
-- backends wait, and only until the first commits. A row's id is drawn before its trigger
-- runs, so one that waited is re-drawn after the predecessor it waited for (see below): a
-- chain's rows stay in id order and commit in id order.
--
-- Each chain has a head in private.audit_chains (first and last id, row count, last hash),
-- moved after every INSERT statement that wrote to the chain, in its transaction. The
-- head is what makes the newest rows count: without it, deleting a chain's last rows, or
-- truncating the table, leaves chains that verify. The link is computed by a BEFORE INSERT
-- trigger on the table itself, so every way in (write_audit, the env resolution's batch, a
-- manual insert) is chained, and it overwrites whatever chain fields the inserter supplied.
-- Cost per row: two index lookups, one sha256 over the canonical text, one more index entry,
-- a re-entrant lock; per transaction: the chain's lock and two shared locks that tell the
-- export its first id (see private.export_audit); per INSERT statement: one update of a small
-- head row (see the README for the measurements).
--
-- The link (private.audit_link): sha256(previous hash || canonical text), where the previous
-- hash of a chain's first row is empty and the canonical text is the jsonb array
-- ["sigyl-audit-1", chain, seq, id, secret_id, secret_name, owner_id, actor_id, actor_type,
-- action, version, deployment_id, ip, user_agent, request_id, outcome, details,
-- created_at as microseconds since the epoch], as jsonb prints it (independent of TimeZone
-- and DateStyle). Every column is in it, so any edit shows.
--
-- What this catches, and what it cannot: see the README ("Audit: tamper evidence"). In short,
-- an owner who rewrites rows *and* recomputes every later hash and the heads consistently is
-- caught only against a checkpoint kept outside the database (the heads printed by
-- `npm run audit:verify`, or the export shipped to a SIEM).
create table private.audit_chains (
  chain int primary key,
  first_id bigint not null,
  last_id bigint not null,
  row_count bigint not null,
  last_hash bytea not null
) with (fillfactor = 50);
comment on table private.audit_chains is
  'Head of each audit hash chain: where it starts and ends, how many rows it has, its last hash. Written only by private.advance_audit_chain_head(). Owner only.';
revoke all on private.audit_chains from public, anon, authenticated, service_role;

-- No `set search_path` (inlined); only pg_catalog's operator.
create or replace function private.audit_chain_of(p_pid int) returns int
language sql immutable
as $$ select p_pid % 256 $$;
comment on function private.audit_chain_of(int) is
  'The audit hash chain of a backend: its pid modulo 256, so there are never more than 256 chains. Owner only.';

-- No `set search_path`: a function with a SET clause is never inlined and pays for the setting
-- on every call, here a third of the link's cost. Nothing in it depends on the path: every
-- name is pg_catalog's, which is searched first, and its only callers are this file's
-- functions, which run with an empty path.
create or replace function private.audit_link(p_prev bytea, p_seq bigint, r public.secret_access_logs)
returns bytea
language sql immutable
as $$
  select sha256(coalesce(p_prev, '\x'::bytea) || convert_to(jsonb_build_array(
    'sigyl-audit-1', r.chain, p_seq, r.id, r.secret_id, r.secret_name, r.owner_id, r.actor_id,
    r.actor_type::text, r.action::text, r.version, r.deployment_id, r.ip, r.user_agent, r.request_id,
    r.outcome, r.details, (extract(epoch from r.created_at) * 1000000)::bigint)::text, 'UTF8'))
$$;
comment on function private.audit_link(bytea, bigint, public.secret_access_logs) is
  'The hash of an audit row at position p_seq of its chain after the hash p_prev: one definition for the trigger that writes it and the verification that recomputes it. Owner only.';

-- The link, per row. The previous row is the newest row of this chain that the head does not
-- yet record (rows of this INSERT statement before it: the head moves at its end, below),
-- else the head itself. Never "the newest row of the chain" alone: after the owner deleted a
-- chain's newest rows, that would link new rows to the survivor and close the gap; linking to
-- the head keeps the gap visible. Two index lookups and no write but the row itself, so a
-- transaction writing many rows (env resolution, a job's batch) costs linear time.
-- First the chain's lock (held to the end of the transaction; re-entrant), so the previous row
-- is committed or this transaction's own. The id was drawn before this trigger ran: if it is
-- not after the predecessor's (this transaction waited for the lock while the other drew a
-- higher id and committed), it is drawn again, now after every id of the chain. On the
-- transaction's first row, the export is told the first id it may still commit: two shared
-- advisory locks, keys (254592267, id >> 31) and (-1564307646, id & 2^31-1), visible in
-- pg_locks (the hashtext of 'sigyl:audit_first_id_hi' and '_lo'), and sigyl.audit_first_id.
create or replace function private.chain_audit_row() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  c int := private.audit_chain_of(pg_backend_pid());
  hd private.audit_chains;
  prev bytea;
  prev_id bigint;
  seq bigint;
begin
  perform pg_advisory_xact_lock(-659277875, c);
  new.chain := c;
  select * into hd from private.audit_chains h where h.chain = c;
  select l.id, l.chain_seq, l.chain_hash into prev_id, seq, prev
    from public.secret_access_logs l
   where l.chain = c and l.id > coalesce(hd.last_id, 0)
   order by l.id desc limit 1;
  if seq is null and hd.chain is not null then
    seq := hd.row_count; prev := hd.last_hash; prev_id := hd.last_id;
  end if;
  if new.id <= prev_id then
    new.id := nextval('public.secret_access_logs_id_seq');
  end if;
  if coalesce(current_setting('sigyl.audit_first_id', true), '') = '' then
    perform pg_advisory_xact_lock_shared(254592267, (new.id >> 31)::int),
            pg_advisory_xact_lock_shared(-1564307646, (new.id & 2147483647)::int);
    perform set_config('sigyl.audit_first_id', new.id::text, true);
  end if;
  new.chain_seq := coalesce(seq, 0) + 1;
  new.chain_hash := private.audit_link(prev, new.chain_seq, new);
  return new;
end
$$;
comment on function private.chain_audit_row() is
  'Trigger: links every new audit row to the previous row of its backend''s chain (chain, position, hash), whatever the inserter supplied, under the chain''s transaction lock. Owner only.';
-- The only BEFORE INSERT trigger: nothing may change the row after it is hashed.
create trigger secret_access_logs_chain before insert on public.secret_access_logs
  for each row execute function private.chain_audit_row();

-- The head, once per INSERT statement (a statement-level trigger): it moves to the chain's
-- newest row. Not per row: each update of the head adds a row version that cannot be pruned
-- before the transaction ends, so a statement writing many rows (env resolution's batch) would
-- walk ever longer version chains. A transaction of many single-row statements (a job's batch
-- of at most private.settings.job_batch_size) still updates it once per statement. Not
-- deferred to commit either: pending trigger events would make a TRUNCATE in the same
-- transaction fail before the append-only trigger could refuse it with its own message.
-- A transaction that wrote no row yet (sigyl.audit_first_id unset) holds no chain lock and has
-- nothing to move: it returns at once, reading nothing another may be changing.
create or replace function private.advance_audit_chain_head() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  c int := private.audit_chain_of(pg_backend_pid());
  hd private.audit_chains;
  newest public.secret_access_logs;
begin
  if coalesce(current_setting('sigyl.audit_first_id', true), '') = '' then return null; end if;
  select * into hd from private.audit_chains h where h.chain = c;
  select * into newest from public.secret_access_logs l
   where l.chain = c and l.id > coalesce(hd.last_id, 0)
   order by l.id desc limit 1;
  if newest.id is null then return null; end if;
  if hd.chain is null then
    insert into private.audit_chains (chain, first_id, last_id, row_count, last_hash)
    values (c, (select min(l.id) from public.secret_access_logs l where l.chain = c),
            newest.id, newest.chain_seq, newest.chain_hash);
  else
    update private.audit_chains h set last_id = newest.id, row_count = newest.chain_seq, last_hash = newest.chain_hash
     where h.chain = c;
  end if;
  return null;
end
$$;
comment on function private.advance_audit_chain_head() is
  'Trigger: after each INSERT statement, moves the chain head of this backend to its newest row, in the same transaction as the rows. Owner only.';
create trigger secret_access_logs_chain_head after insert on public.secret_access_logs
  for each statement execute function private.advance_audit_chain_head();

-- Verification, resumable in bounded steps: each call checks at most p_budget rows (a chain
-- costs one more), chain after chain in chain order, each chain in id order, and returns where
-- to resume (chain, last id, last hash in hex, last seq) and the first broken link it met:
--   unchained     a row outside every chain (inserted with the chain trigger bypassed);
--   rows_missing  the row's seq skips some (rows deleted before it), or the head records
--                 rows the table no longer has (the newest deleted, or truncated: then the id
--                 is the head's last id, or its first when none is left);
--   out_of_order  the row's seq is not the next, and the expected one comes later (rows moved);
--   altered       the hash does not follow from the row and its predecessor (an edit);
--   head_missing  a chain's rows without its head; head_mismatch: a head that disagrees otherwise.
-- After a broken link the rest of that chain is skipped: the caller reports one per chain.
-- STABLE, so one call sees one snapshot: rows and heads agree even while inserts go on, and
-- rows committed between calls are simply part of the next call's walk.
create or replace function private.verify_audit_chain(
  p_chain int, p_after_id bigint, p_prev text, p_seq bigint, p_budget int default 10000)
returns table (next_chain int, next_after_id bigint, next_prev text, next_seq bigint, checked int,
               broken_chain int, broken_id bigint, reason text, finished boolean)
language plpgsql stable security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  c int := p_chain;
  after_id bigint := p_after_id;
  prev bytea := decode(coalesce(p_prev, ''), 'hex');
  seq bigint := coalesce(p_seq, 0);
  budget int := greatest(coalesce(p_budget, 10000), 1);
  walked int;
  r public.secret_access_logs;
  hd private.audit_chains;
  limit_rows int;
begin
  perform private.require_api_session();
  checked := 0;
  if c is null then
    select min(l.id) into broken_id from public.secret_access_logs l where l.chain is null;
    if broken_id is not null then reason := 'unchained'; end if;
    c := least((select min(h.chain) from private.audit_chains h),
               (select min(l.chain) from public.secret_access_logs l));
  end if;
  while c is not null and reason is null and budget > 0 loop
    limit_rows := budget;
    walked := 0;
    for r in select * from public.secret_access_logs l
              where l.chain = c and l.id > coalesce(after_id, 0) order by l.id limit limit_rows loop
      walked := walked + 1;
      if r.chain_seq is distinct from seq + 1 then
        broken_chain := c; broken_id := r.id;
        reason := case
          when r.chain_seq > seq + 1 and not exists (select 1 from public.secret_access_logs l
                where l.chain = c and l.chain_seq = seq + 1 and l.id > r.id) then 'rows_missing'
          else 'out_of_order' end;
        exit;
      end if;
      if r.chain_hash is distinct from private.audit_link(prev, r.chain_seq, r) then
        broken_chain := c; broken_id := r.id; reason := 'altered';
        exit;
      end if;
      prev := r.chain_hash; seq := r.chain_seq; after_id := r.id;
    end loop;
    checked := checked + walked;
    budget := budget - walked;
    -- The step's rows ran out inside this chain: the next call resumes here.
    if reason is null and walked = limit_rows then exit; end if;
    if reason is null then
      select * into hd from private.audit_chains h where h.chain = c;
      if hd.chain is null then
        broken_chain := c; broken_id := after_id; reason := 'head_missing';
      elsif hd.row_count > seq then
        broken_chain := c; broken_id := case when seq = 0 then hd.first_id else hd.last_id end;
        reason := 'rows_missing';
      elsif hd.row_count <> seq or hd.last_id <> after_id or hd.last_hash <> prev then
        broken_chain := c; broken_id := hd.last_id; reason := 'head_mismatch';
      end if;
    end if;
    -- This chain is done (verified, or broken: the rest of it is skipped); on to the next.
    c := least((select min(h.chain) from private.audit_chains h where h.chain > c),
               (select min(l.chain) from public.secret_access_logs l where l.chain > c));
    after_id := null; prev := '\x'; seq := 0;
    budget := budget - 1;
  end loop;
  next_chain := c; next_after_id := after_id; next_prev := encode(prev, 'hex'); next_seq := seq;
  finished := c is null;
  return next;
end
$$;
comment on function private.verify_audit_chain(int, bigint, text, bigint, int) is
  'One bounded step of the audit trail''s verification: recomputes the hash chains from where the last step stopped and returns the first broken link met and where to resume. For the service role (GET /admin/audit/verify, npm run audit:verify).';

create or replace function private.audit_chain_heads()
returns table (chain int, first_id bigint, last_id bigint, row_count bigint, last_hash text)
language plpgsql stable security definer set search_path = ''
as $$
begin
  perform private.require_api_session();
  return query select h.chain, h.first_id, h.last_id, h.row_count, encode(h.last_hash, 'hex')
                 from private.audit_chains h order by h.chain;
end
$$;
comment on function private.audit_chain_heads() is
  'Every chain''s head (last hash in hex): the checkpoint to keep outside the database. For the service role.';

-- The export for a SIEM: rows after a cursor (an id), in id order. An id cursor alone would
-- lose rows: ids are drawn when a row is inserted, not when it commits, so a transaction that
-- drew id 10 may commit after another drew 11 and committed, and a reader that passed 11
-- would never see 10. So a page stops short of any id that may still commit:
--   1. the sequence's last value is read first: every id drawn so far is at most that;
--   2. then the backends holding a write lock on the table (pg_locks, readable by every role):
--      a transaction takes that lock before it draws an id and keeps it until it ends, so any
--      id drawn before step 1 and not yet committed belongs to one of them;
--   3. then, in a fresh snapshot, the rows, up to the lowest id such a backend may still
--      commit: the first id of its transaction, which its chain trigger advertises in pg_locks
--      with the first row (see private.chain_audit_row; read in step 2's same look). A backend
--      that has not advertised yet (its id drawn, its trigger not yet run) gets no id its
--      chain's head already covers (an id drawn before the chain lock and not after the
--      chain's committed rows is drawn again), so the page stops at that head's last id, or
--      before everything while its chain has no head at all: at most 256 times in the life of
--      the database, for an instant each. Only ids that may still commit are held back.
-- Each step needs its own snapshot, in this order: VOLATILE, READ COMMITTED only. Rows come
-- back exactly as stored, chain fields included, so the receiver can check them too.
create or replace function private.export_audit(p_since bigint, p_limit int)
returns setof public.secret_access_logs
language plpgsql volatile security definer set search_path = ''
as $$
declare
  drawn bigint;
  writers int[];
  firsts bigint[];
begin
  perform private.require_api_session();
  if current_setting('transaction_isolation') <> 'read committed' then
    raise exception 'the audit export needs READ COMMITTED (one snapshot per step)';
  end if;
  select case when s.is_called then s.last_value else 0 end into drawn from public.secret_access_logs_id_seq s;
  select coalesce(array_agg(w.pid), '{}'), coalesce(array_agg(w.first_id), '{}') into writers, firsts
    from (select l.pid,
                 bool_or(l.locktype = 'relation') as writes,
                 min(l.objid::bigint) filter (where l.classid = 254592267::oid) * 2147483648
                   + min(l.objid::bigint) filter (where l.classid = (-1564307646)::oid) as first_id
            from pg_catalog.pg_locks l
           where l.database = (select d.oid from pg_catalog.pg_database d where d.datname = current_database())
             and l.pid is distinct from pg_backend_pid()
             and ((l.locktype = 'relation' and l.relation = 'public.secret_access_logs'::regclass
                   and l.mode in ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock'))
               or (l.locktype = 'advisory' and l.objsubid = 2 and l.granted
                   and l.classid in (254592267::oid, (-1564307646)::oid)))
           group by l.pid) w
   where w.writes;
  return query
    select l.* from public.secret_access_logs l
     where l.id > coalesce(p_since, 0)
       and l.id <= least(drawn, (select min(coalesce(w.first_id - 1, h.last_id, 0))
                                   from unnest(writers, firsts) w (pid, first_id)
                                   left join private.audit_chains h on h.chain = private.audit_chain_of(w.pid)))
     order by l.id
     limit greatest(coalesce(p_limit, 1000), 1);
end
$$;
comment on function private.export_audit(bigint, int) is
  'Audit rows after an id, in id order, stopping short of any id a running transaction may still commit, so a cursor never skips a row. For the service role (GET /admin/audit/export).';

-- Who is acting, from the request settings the function (or PostgREST) put on the
-- transaction; no claims at all is the database itself (pg_cron): 'system'. In one place, so
-- write_audit and env resolution's batch of audit rows apply the same rules.
create or replace function private.audit_actor()
returns table (actor_type public.audit_actor_type, actor_id uuid, deployment_id uuid,
               ip text, user_agent text, request_id text)
language plpgsql stable security definer set search_path = ''
as $$
declare
  claims jsonb := nullif(current_setting('request.jwt.claims', true), '')::jsonb;
  headers jsonb := nullif(current_setting('request.headers', true), '')::jsonb;
begin
  actor_type := case
    when claims is null then 'system'
    when claims ->> 'sigyl_actor' = 'deployment' then 'deployment'
    when claims ->> 'role' = 'service_role' then 'service'
    else 'user'
  end;
  actor_id := case when actor_type = 'user' then nullif(claims ->> 'sub', '')::uuid end;
  deployment_id := nullif(claims ->> 'deployment_id', '')::uuid;
  ip := nullif(btrim(split_part(headers ->> 'x-forwarded-for', ',', 1)), '');
  user_agent := left(headers ->> 'user-agent', 512);
  request_id := left(headers ->> 'x-request-id', 128);
  return next;
end
$$;
comment on function private.audit_actor() is
  'The acting party and request metadata of the current transaction, as audit rows record them. Owner only.';

-- Writes one audit row for the current caller, as private.audit_actor() names it.
create or replace function private.write_audit(
  p_secret_id uuid,
  p_secret_name text,
  p_owner_id uuid,
  p_action public.audit_action,
  p_version int default null,
  p_details jsonb default '{}'::jsonb,
  p_outcome text default 'success',
  p_deployment_id uuid default null
) returns void
language plpgsql security definer set search_path = ''
as $$
begin
  insert into public.secret_access_logs
    (secret_id, secret_name, owner_id, actor_id, actor_type, action, version, deployment_id,
     ip, user_agent, request_id, outcome, details)
  select p_secret_id, p_secret_name, p_owner_id, a.actor_id, a.actor_type, p_action, p_version,
         coalesce(p_deployment_id, a.deployment_id), a.ip, a.user_agent, a.request_id,
         p_outcome, coalesce(p_details, '{}'::jsonb)
    from private.audit_actor() a;
end
$$;
comment on function private.write_audit(uuid, text, uuid, public.audit_action, int, jsonb, text, uuid) is
  'Appends one audit row in the caller''s transaction, so an event and its row commit or roll back together. Owner only.';

-- Triggers: every change to secrets, versions and grants writes its row ------------------

create or replace function private.audit_secret_change() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  changed text[] := '{}';
begin
  if tg_op = 'INSERT' then
    perform private.write_audit(new.id, new.name, new.user_id, 'created', nullif(new.current_version, 0),
      jsonb_build_object('secretType', new.secret_type));
    return new;
  end if;
  if tg_op = 'DELETE' then
    perform private.write_audit(old.id, old.name, old.user_id, 'purged', old.current_version);
    return old;
  end if;

  if old.deleted_at is null and new.deleted_at is not null then
    perform private.write_audit(new.id, new.name, new.user_id, 'deleted', new.current_version);
    return new;
  end if;
  if old.deleted_at is not null and new.deleted_at is null then
    perform private.write_audit(new.id, new.name, new.user_id, 'restored', new.current_version);
    return new;
  end if;
  -- Switched off by the expiry job: no caller claims, and the expiry has passed at the time
  -- the job runs for (sigyl.job_now, set by the job; now() otherwise).
  if old.is_active and not new.is_active and new.expires_at is not null
     and new.expires_at <= coalesce(nullif(current_setting('sigyl.job_now', true), '')::timestamptz, now())
     and nullif(current_setting('request.jwt.claims', true), '') is null then
    perform private.write_audit(new.id, new.name, new.user_id, 'expired', new.current_version,
      jsonb_build_object('expiresAt', new.expires_at));
    return new;
  end if;

  if new.user_id is distinct from old.user_id then changed := array_append(changed, 'ownerId'); end if;
  if new.name is distinct from old.name then changed := array_append(changed, 'name'); end if;
  if new.secret_type is distinct from old.secret_type then changed := array_append(changed, 'secretType'); end if;
  if new.description is distinct from old.description then changed := array_append(changed, 'description'); end if;
  if new.tags is distinct from old.tags then changed := array_append(changed, 'tags'); end if;
  if new.is_active is distinct from old.is_active then changed := array_append(changed, 'isActive'); end if;
  if new.expires_at is distinct from old.expires_at then changed := array_append(changed, 'expiresAt'); end if;
  if cardinality(changed) > 0 then
    perform private.write_audit(new.id, new.name, new.user_id, 'updated', new.current_version,
      jsonb_build_object('fields', to_jsonb(changed)));
  end if;
  return new;
end
$$;
comment on function private.audit_secret_change() is
  'Trigger: every change to a secret''s row (create, edit, delete, restore, expiry, purge) writes its audit row, whoever makes it.';
create trigger secrets_audit after insert or update or delete on public.secrets
  for each row execute function private.audit_secret_change();

-- A new value version after the first is a rotation; version 1 is covered by 'created'.
create or replace function private.audit_version_insert() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  s public.secrets;
begin
  if new.version = 1 then return new; end if;
  select * into s from public.secrets where id = new.secret_id;
  perform private.write_audit(new.secret_id, s.name, s.user_id, 'rotated', new.version,
    case when new.restored_from is null then '{}'::jsonb
         else jsonb_build_object('restoredFrom', new.restored_from) end);
  return new;
end
$$;
comment on function private.audit_version_insert() is
  'Trigger: a new value version after the first is audited as rotated (with restoredFrom for a roll back).';
create trigger secret_versions_audit after insert on public.secret_versions
  for each row execute function private.audit_version_insert();

create or replace function private.audit_permission_change() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  s public.secrets;
begin
  select * into s from public.secrets where id = coalesce(new.secret_id, old.secret_id);
  -- Grants removed by the purge of their secret are covered by its 'purged' row.
  if s.id is null then return null; end if;
  if tg_op = 'DELETE' then
    perform private.write_audit(s.id, s.name, s.user_id, 'unshared', s.current_version,
      jsonb_build_object('grantee', old.user_id, 'permission', old.permission));
  elsif tg_op = 'INSERT' or new.permission is distinct from old.permission then
    perform private.write_audit(s.id, s.name, s.user_id, 'shared', s.current_version,
      jsonb_build_object('grantee', new.user_id, 'permission', new.permission,
                         'previous', case when tg_op = 'UPDATE' then old.permission::text end));
  end if;
  return null;
end
$$;
comment on function private.audit_permission_change() is
  'Trigger: granting, changing and revoking a level are audited as shared / unshared, naming the grantee.';
create trigger secret_permissions_audit after insert or update or delete on public.secret_permissions
  for each row execute function private.audit_permission_change();

revoke all on function private.audit_actor(),
  private.write_audit(uuid, text, uuid, public.audit_action, int, jsonb, text, uuid),
  private.audit_secret_change(), private.audit_version_insert(), private.audit_permission_change(),
  private.forbid_audit_change(),
  private.audit_chain_of(int), private.audit_link(bytea, bigint, public.secret_access_logs), private.chain_audit_row(),
  private.advance_audit_chain_head()
  from public, anon, authenticated, service_role;
-- Verification and export: the service role only (the routes check the caller first, too).
revoke all on function private.verify_audit_chain(int, bigint, text, bigint, int),
  private.audit_chain_heads(), private.export_audit(bigint, int)
  from public, anon, authenticated, service_role;
grant execute on function private.verify_audit_chain(int, bigint, text, bigint, int),
  private.audit_chain_heads(), private.export_audit(bigint, int)
  to service_role;

-- Privileges and visibility ---------------------------------------------------------------
revoke all on public.secret_access_logs from anon, authenticated, service_role;
-- Nobody but the owner may draw from (or reset) the audit's id sequence.
revoke all on sequence public.secret_access_logs_id_seq from anon, authenticated, service_role;
grant select on public.secret_access_logs to authenticated, service_role;
alter table public.secret_access_logs enable row level security;

-- `= any (array(select …))` for an indexable condition, as the policies of the secrets tables.
create policy "Users see their own actions, and every event on secrets they own or administer"
  on public.secret_access_logs for select to authenticated
  using (actor_id = (select auth.uid())
         or owner_id = (select auth.uid())
         or secret_id = any (array(select private.shared_secret_ids('admin'))));
comment on policy "Users see their own actions, and every event on secrets they own or administer" on public.secret_access_logs is
  'Matches on the owner at the time of the event, so owners keep the trail of purged secrets; a grantee below admin sees only its own actions, never who else reads.';
