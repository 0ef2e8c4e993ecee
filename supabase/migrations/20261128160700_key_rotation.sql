-- KEK rotation: a new key-encryption key is born in Vault and made active, every DEK is
-- re-wrapped under it in batches, and the old key is retired once it wraps nothing. Values
-- are never re-encrypted: only secret_versions.wrapped_dek and kek_version change (the only
-- two columns the immutability trigger lets change).
--
-- Who calls these helpers: the function, as the connection owner, after it has checked that
-- the caller is the service role; and `npm run keys:rotate` in-process, as the owner too.
-- Not service_role: its key travels with REST clients, and these helpers create keys and
-- rewrite every wrapped DEK, while the keyring the re-wrap needs is owner-only anyway
-- (private.load_keyring). So, like load_keyring, none of them is executable by public, anon,
-- authenticated or service_role. The function sets the caller's claims and request headers
-- transaction-locally (not its role), so the audit row still names the service caller.
--
-- Concurrency, on a live system with several function instances:
--   * an advisory lock serialises starting, finishing and retiring, so two rotation calls
--     never create two keys: the second resumes the first;
--   * a batch locks the versions it re-wraps FOR UPDATE SKIP LOCKED: concurrent rotators
--     share the work, and value reads (plain snapshots) never wait;
--   * retirement locks the key row FOR UPDATE before counting its DEKs, and every insert
--     takes FOR KEY SHARE on its KEK row (the trigger below, and the foreign key). A version
--     sealed by an instance still on the old key therefore either commits before the count
--     (the key stays, the rotation re-wraps it later) or finds the key retired and fails with
--     'kek_retired' (the function reloads its keyring and seals again under the new key).

-- One row per rotation; the open one (completed_at null) is what a new call resumes.
create table if not exists private.key_rotations (
  id bigint generated always as identity primary key,
  from_version int not null references private.key_versions (version),
  to_version int not null unique references private.key_versions (version),
  rewrapped bigint not null default 0 check (rewrapped >= 0),
  started_at timestamptz not null default now(),
  completed_at timestamptz
);
comment on table private.key_rotations is
  'KEK rotations: from which active key to which new one, how many DEKs were re-wrapped, when it completed.';
comment on column private.key_rotations.rewrapped is
  'DEKs re-wrapped under to_version so far, across every call that worked on this rotation.';
comment on column private.key_rotations.completed_at is
  'Set when no key but to_version wraps a DEK and the older keys are retired; null while it can be resumed.';

create unique index if not exists key_rotations_one_open
  on private.key_rotations ((true)) where completed_at is null;

revoke all on private.key_rotations from public, anon, authenticated, service_role;

-- The one lock key of the rotation's life cycle (start, finish, manual retire).
create or replace function private.key_rotation_lock() returns void
language sql volatile security definer set search_path = ''
as $$
  select pg_advisory_xact_lock(hashtextextended('sigyl:kek_rotation', 0))
$$;
comment on function private.key_rotation_lock() is
  'Takes the transaction-level advisory lock that serialises starting, finishing and retiring KEKs.';

-- Starts a rotation, or resumes the open one. A new rotation creates KEK version max+1 in
-- Vault (private.create_kek: from random bytes, never seen outside the database, never in
-- the WAL in plaintext), makes it active and marks the previous active key 'retiring'.
create or replace function private.begin_key_rotation()
returns table (from_version int, to_version int, created boolean)
language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  open_rotation private.key_rotations;
  was_active int;
  next_version int;
begin
  perform private.key_rotation_lock();
  select * into open_rotation from private.key_rotations r where r.completed_at is null;
  if open_rotation.id is not null then
    from_version := open_rotation.from_version;
    to_version := open_rotation.to_version;
    created := false;
    return next;
    return;
  end if;

  select k.version into was_active from private.key_versions k where k.status = 'active' for update;
  select max(k.version) + 1 into next_version from private.key_versions k;
  -- One active key at a time (key_versions_one_active): demote first, then add.
  update private.key_versions k set status = 'retiring' where k.version = was_active;
  insert into private.key_versions (version, vault_secret_id, status)
  values (next_version, private.create_kek(next_version), 'active');
  insert into private.key_rotations (from_version, to_version) values (was_active, next_version);

  from_version := was_active;
  to_version := next_version;
  created := true;
  return next;
end
$$;
comment on function private.begin_key_rotation() is
  'Resumes the open rotation, or creates the next KEK in Vault, makes it active and marks the previous one retiring. Owner only.';

-- The next batch of versions whose DEK is not wrapped by the active key, locked for the
-- caller's transaction. Keyset order (secret_id, version) lets one call step past a DEK it
-- could not re-wrap; rows another rotator holds are skipped, not waited for. PL/pgSQL so its
-- plan is kept for the session: as a SQL function it was planned again for every batch.
create or replace function private.rewrap_batch_source(p_limit int, p_after_secret uuid default null, p_after_version int default null)
returns table (secret_id uuid, version int, kek_version int, wrapped_dek text)
language plpgsql volatile security definer set search_path = ''
as $$
begin
  return query
  select sv.secret_id, sv.version, sv.kek_version, encode(sv.wrapped_dek, 'base64')
    from public.secret_versions sv
   where sv.kek_version in (select k.version from private.key_versions k where k.status <> 'active')
     and (p_after_secret is null or (sv.secret_id, sv.version) > (p_after_secret, p_after_version))
   order by sv.secret_id, sv.version
   limit greatest(p_limit, 0)
     for update of sv skip locked;
end
$$;
comment on function private.rewrap_batch_source(int, uuid, int) is
  'Up to p_limit versions (after a keyset position) whose DEK is wrapped by a non-active KEK, locked FOR UPDATE SKIP LOCKED; wrapped_dek as base64. Owner only.';

-- Stores re-wrapped DEKs: [{secret_id, version, from_version, wrapped_dek (base64)}]. Only
-- the wrapped DEK and its KEK version change, and only under the active key. The wrapped DEK
-- is the only copy of a version's key, so a bad one loses the value for good: the service
-- stores a wrapping only after unwrapping it with the new KEK and finding the same DEK, and
-- this refuses, storing nothing of the batch, what cannot be a re-wrap whatever the service
-- did: a blob that is not IV (12) || DEK (32) || tag (16), one identical to the wrapping it
-- replaces (a fresh IV under another key never is), or a row that is not, exactly, one the
-- caller's batch locked under its old key (all of them are, FOR UPDATE, so none can have
-- moved meanwhile).
create or replace function private.store_rewrapped(p_to_version int, p_rows jsonb)
returns int
language plpgsql security definer set search_path = ''
as $$
declare
  n int;
  bad text;
begin
  if not exists (select 1 from private.key_versions k where k.version = p_to_version and k.status = 'active') then
    raise exception 'kek_not_active' using errcode = 'S0409';
  end if;
  -- The checks are the update's own conditions, so the batch is read once: every row given
  -- must be updated, else the whole call is refused (and its updates undone by the raise).
  update public.secret_versions sv
     set wrapped_dek = decode(r.wrapped_dek, 'base64'), kek_version = p_to_version
    from jsonb_to_recordset(p_rows) as r (secret_id uuid, version int, from_version int, wrapped_dek text)
   where sv.secret_id = r.secret_id and sv.version = r.version and sv.kek_version = r.from_version
     and octet_length(decode(r.wrapped_dek, 'base64')) = 60
     and decode(r.wrapped_dek, 'base64') <> sv.wrapped_dek;
  get diagnostics n = row_count;
  if n <> jsonb_array_length(p_rows) then
    -- Which ones, for the detail (the server log), not the message the caller gets: what the
    -- update did not store as given.
    select string_agg(coalesce(r.secret_id::text, '?') || '@' || coalesce(r.version::text, '?'), ', ') into bad
      from jsonb_to_recordset(p_rows) as r (secret_id uuid, version int, from_version int, wrapped_dek text)
      left join public.secret_versions sv
        on sv.secret_id = r.secret_id and sv.version = r.version and sv.kek_version = p_to_version
       and sv.wrapped_dek = decode(r.wrapped_dek, 'base64')
     where sv.secret_id is null;
    raise exception 'rewrap_unverified'
      using errcode = 'S0500', detail = 'not a re-wrap of a version under its old key: ' || coalesce(bad, 'a version given twice');
  end if;
  update private.key_rotations k set rewrapped = k.rewrapped + n
   where k.completed_at is null and k.to_version = p_to_version;
  return n;
end
$$;
comment on function private.store_rewrapped(int, jsonb) is
  'Writes re-wrapped DEKs (wrapped_dek and kek_version only) under the active KEK and counts them on the open rotation; refuses the whole batch (rewrap_unverified) if a blob is not 60 bytes, equals the old one, or names a row not under its old key. Owner only.';

-- What a rotation still has to re-wrap: only the DEKs of non-active keys are counted, never
-- every DEK of the active one.
create or replace function private.rewrap_remaining() returns bigint
language sql stable security definer set search_path = ''
as $$
  select count(*) from public.secret_versions sv
   where sv.kek_version in (select k.version from private.key_versions k where k.status <> 'active')
$$;
comment on function private.rewrap_remaining() is
  'DEKs still wrapped by a KEK other than the active one (what a rotation has left). Owner only.';

-- Retires every key that is neither active nor retired and wraps no DEK. When none is left,
-- the open rotation is complete: it is closed and audited as 'key_rotated'.
create or replace function private.finish_key_rotation()
returns table (completed boolean, from_version int, to_version int, rewrapped bigint, retired int[])
language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  open_rotation private.key_rotations;
begin
  perform private.key_rotation_lock();
  select * into open_rotation from private.key_rotations r where r.completed_at is null for update;
  -- Waits for in-flight inserts under these keys; the count below (a new statement, so a new
  -- snapshot) then sees them.
  perform 1 from private.key_versions k where k.status = 'retiring' for update;
  with idle as (
    update private.key_versions k set status = 'retired', retired_at = now()
     where k.status = 'retiring'
       and not exists (select 1 from public.secret_versions sv where sv.kek_version = k.version)
    returning k.version
  )
  select coalesce(array_agg(i.version order by i.version), '{}') into retired from idle i;
  completed := not exists (select 1 from private.key_versions k where k.status = 'retiring');

  if open_rotation.id is not null then
    from_version := open_rotation.from_version;
    to_version := open_rotation.to_version;
    rewrapped := open_rotation.rewrapped;
    if completed then
      update private.key_rotations r set completed_at = now() where r.id = open_rotation.id;
      perform private.write_audit(null, null, null, 'key_rotated', null,
        jsonb_build_object('fromVersion', open_rotation.from_version, 'toVersion', open_rotation.to_version,
                           'rewrapped', open_rotation.rewrapped));
    end if;
  end if;
  return next;
end
$$;
comment on function private.finish_key_rotation() is
  'Retires idle non-active KEKs; if none still wraps a DEK, closes the open rotation and writes its key_rotated audit row. Owner only.';

-- Wraps per KEK ---------------------------------------------------------------------------
--
-- Every wrap is AES-GCM with a random 96-bit IV, and NIST SP 800-38D caps one key at 2^32
-- such invocations (beyond it, a repeated IV, which breaks GCM for that key, becomes likely
-- enough to matter). So the database counts, per KEK version, every wrapping it stores: a
-- new secret, a new version, a roll-back (which seals a fresh DEK) and every re-wrap of a
-- rotation. Stored wrappings are the ones an attacker can ever see together; a wrap computed
-- and then rolled back leaves no ciphertext, and the check that unwraps a new wrapping
-- makes no encryption. The count is not derived from secret_versions, which forgets: a
-- rotation moves DEKs away from a key and the purge deletes versions, but neither gives an
-- IV back.
--
-- One counter row per key would be locked by every write until its transaction commits,
-- serialising all writers. So each key has up to 64 rows, and a statement adds to the row
-- of its backend (pg_backend_pid() % 64): a backend runs one transaction at a time, so
-- transactions running together share a row only when their backends' pids are congruent
-- mod 64, and one transaction always adds to the same row of a key, so two of them never
-- lock counter rows in opposite orders. The total is the sum of the rows.
create table if not exists private.kek_wrap_counts (
  kek_version int not null references private.key_versions (version),
  shard smallint not null check (shard between 0 and 64),
  wraps bigint not null default 0 check (wraps >= 0),
  primary key (kek_version, shard)
);
comment on table private.kek_wrap_counts is
  'Wrappings stored per KEK version (random-IV AES-GCM invocations, capped at 2^32 per key by NIST SP 800-38D), in up to 64 rows per key so concurrent writers do not queue on one row, plus row 64 for a rotation''s re-wraps; the count is their sum and outlives purged secrets.';
revoke all on private.kek_wrap_counts from public, anon, authenticated, service_role;

-- Versions inserted before this table existed (a database migrated before it) count as at
-- least one wrap each.
insert into private.kek_wrap_counts (kek_version, shard, wraps)
select sv.kek_version, 0, count(*) from public.secret_versions sv group by sv.kek_version
on conflict do nothing;

-- One upsert per statement and KEK, not per row: a re-wrap batch of 500 rows adds 500 once.
-- Written for any table with `kek_version` and `wrapped_dek` columns that stores wrappings
-- (attach it with the two triggers below): on INSERT every row holding a wrapping counts; on
-- UPDATE a row counts if it holds a wrapping that the statement's old rows did not (a fresh
-- IV makes every wrapping unique, so that is a new one; a relabelled or untouched row is not).
create or replace function private.count_kek_wraps() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    insert into private.kek_wrap_counts as c (kek_version, shard, wraps)
    select n.kek_version, (pg_backend_pid() % 64)::smallint, count(*)
      from new_rows n
     where n.wrapped_dek is not null and n.kek_version is not null
     group by n.kek_version order by n.kek_version
    on conflict (kek_version, shard) do update set wraps = c.wraps + excluded.wraps;
  else
    -- Versions change only by a rotation's re-wrap, whose batch holds its row until it commits
    -- (up to thousands of DEKs): it counts on row 64, which no writer of new wrappings uses.
    insert into private.kek_wrap_counts as c (kek_version, shard, wraps)
    select n.kek_version,
           (case when tg_table_name = 'secret_versions' then 64 else pg_backend_pid() % 64 end)::smallint, count(*)
      from new_rows n
      -- An outer join the planner hashes; `not exists` over the transition tables, which have
      -- no statistics, was planned as a nested loop (9 of a batch's 66 ms at 500 rows).
      left join old_rows o on o.wrapped_dek = n.wrapped_dek
     where n.wrapped_dek is not null and n.kek_version is not null and o.wrapped_dek is null
     group by n.kek_version order by n.kek_version
    on conflict (kek_version, shard) do update set wraps = c.wraps + excluded.wraps;
  end if;
  return null;
end
$$;
comment on function private.count_kek_wraps() is
  'Trigger (statement level, transition tables new_rows / old_rows): adds every stored wrapping (a new row''s, or one an update brought) to its KEK''s count in private.kek_wrap_counts, on the row of the writing backend.';

create trigger secret_versions_count_wraps_on_insert
  after insert on public.secret_versions
  referencing new table as new_rows
  for each statement execute function private.count_kek_wraps();
create trigger secret_versions_count_wraps_on_update
  after update on public.secret_versions
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.count_kek_wraps();

-- KEK versions with their life cycle, how many DEKs each still wraps and how many wraps it
-- has made. Never the material and never the Vault row id.
create or replace function private.key_status()
returns table (version int, status text, created_at timestamptz, retired_at timestamptz, dek_count int, wraps bigint)
language sql stable security definer set search_path = ''
as $$
  select k.version, k.status, k.created_at, k.retired_at,
         (select count(*)::int from public.secret_versions sv where sv.kek_version = k.version),
         (select coalesce(sum(c.wraps), 0)::bigint from private.kek_wrap_counts c where c.kek_version = k.version)
    from private.key_versions k
   order by k.version
$$;
comment on function private.key_status() is
  'Every KEK version: status, created and retired times, the number of DEKs it wraps and of wraps it has made (private.kek_wrap_counts). No key material. Owner only.';

-- Retires one key by hand: refused while it is active or still wraps a DEK. Retiring a
-- retired key changes nothing. The material stays in Vault (backups taken before the
-- rotation still open); a retired key can no longer wrap a new version.
create or replace function private.retire_key(p_version int)
returns table (version int, status text, created_at timestamptz, retired_at timestamptz, dek_count int, wraps bigint)
language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  target private.key_versions;
begin
  perform private.key_rotation_lock();
  select * into target from private.key_versions k where k.version = p_version for update;
  if target.version is null then raise exception 'key_not_found' using errcode = 'S0404'; end if;
  if target.status = 'active' then raise exception 'key_active' using errcode = 'S0409'; end if;
  if target.status = 'retiring' then
    if exists (select 1 from public.secret_versions sv where sv.kek_version = p_version) then
      raise exception 'key_in_use' using errcode = 'S0409';
    end if;
    update private.key_versions k set status = 'retired', retired_at = now() where k.version = p_version;
  end if;
  return query select s.* from private.key_status() s where s.version = p_version;
end
$$;
comment on function private.retire_key(int) is
  'Retires a non-active KEK that wraps no DEK (S0409 key_active / key_in_use otherwise, S0404 key_not_found). Owner only.';

-- No version may be written, or re-wrapped, under a retired key. Per row for inserts (one
-- version at a time), once per statement for updates: a rotation batch re-wraps hundreds of
-- rows under one key, and a look-up per row was a fifth of the batch. Both take the key rows
-- FOR KEY SHARE, as the foreign key's own check does.
create or replace function private.refuse_retired_kek() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  retired boolean;
begin
  -- FOR KEY SHARE: waits for a retirement in progress (it holds FOR UPDATE), then reads its outcome.
  if tg_level = 'ROW' then
    select k.status = 'retired' into retired from private.key_versions k where k.version = new.kek_version for key share;
  else
    select bool_or(k.status = 'retired') into retired from (
      select k.status from private.key_versions k
       where k.version in (select distinct n.kek_version from new_rows n)
       order by k.version for key share) k;
  end if;
  if retired then
    raise exception 'kek_retired' using errcode = 'S0409';
  end if;
  return case when tg_level = 'ROW' then new end;
end
$$;
comment on function private.refuse_retired_kek() is
  'Trigger (per row on insert, per statement with new_rows on update): refuses a secret version wrapped by a retired KEK (S0409 kek_retired); the function reloads its keyring and retries.';

create trigger secret_versions_kek_not_retired
  before insert on public.secret_versions
  for each row execute function private.refuse_retired_kek();
create trigger secret_versions_kek_not_retired_on_update
  after update on public.secret_versions
  referencing new table as new_rows
  for each statement execute function private.refuse_retired_kek();

revoke all on function
  private.count_kek_wraps(),
  private.key_rotation_lock(),
  private.begin_key_rotation(),
  private.rewrap_batch_source(int, uuid, int),
  private.store_rewrapped(int, jsonb),
  private.rewrap_remaining(),
  private.finish_key_rotation(),
  private.key_status(),
  private.retire_key(int),
  private.refuse_retired_kek()
  from public, anon, authenticated, service_role;
-- The function's own login (sigyl_api, which owns nothing) runs them, after checking that the
-- caller is the service role; nobody else who can log in may.
grant execute on function
  private.begin_key_rotation(), private.rewrap_batch_source(int, uuid, int), private.store_rewrapped(int, jsonb),
  private.rewrap_remaining(), private.finish_key_rotation(), private.key_status(), private.retire_key(int)
  to sigyl_api;
