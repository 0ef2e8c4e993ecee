-- Idempotency keys: a write sent with `Idempotency-Key` records its answer here, in the same
-- transaction as its change, so "the commit went through but the answer was lost" (a request
-- deadline met during the commit, a dropped connection) still leaves the answer for the
-- retry: a replay returns it and changes nothing. A claim stored after the commit would be
-- lost exactly then. The function (shared/http/idempotency.ts) runs the whole request in one
-- transaction: claim, the handler's work, the answer, one commit; an error answer rolls it all
-- back, so nothing of it remains and a retry runs again.
--
-- Nothing here reveals the key or the answer: the row is found by a hash of (caller, key), the
-- key itself never reaches the database (the function sends its SHA-256), and the answer's
-- body is sealed by the function under the KEK (envelope encryption, AAD bound to the row),
-- since a body may hold a bearer credential (a new deployment token). Only the helpers below
-- touch the table; each derives the caller from the request's JWT claims, so one caller can
-- neither find nor fill another's key.

create table if not exists private.idempotency_keys (
  key_hash bytea primary key check (octet_length(key_hash) = 32),
  fingerprint bytea not null check (octet_length(fingerprint) = 32),
  created_at timestamptz not null default now(),
  expires_at timestamptz not null default now() + interval '24 hours',
  status smallint check (status between 200 and 299),
  headers jsonb,
  enc_format smallint,
  iv bytea,
  ciphertext bytea,
  wrapped_dek bytea,
  kek_version int,
  -- An answer is stored whole or not at all.
  check ((status is null) = (headers is null) and (status is null) = (ciphertext is null)
     and (status is null) = (iv is null) and (status is null) = (wrapped_dek is null)
     and (status is null) = (kek_version is null) and (status is null) = (enc_format is null))
);
comment on table private.idempotency_keys is
  'One row per Idempotency-Key a caller sent with a write, for 24 hours: the hash of (caller, key), the request''s fingerprint, and the 2xx answer with its body sealed under the KEK. Read and written only through the helpers below; purged by the job sigyl-purge-idempotency.';
comment on column private.idempotency_keys.key_hash is
  'SHA-256 of the caller (user id, or the service role) and the SHA-256 of the key: the key itself is never stored.';
comment on column private.idempotency_keys.fingerprint is
  'SHA-256 of the request (method, path, query, canonical body, If-Match), computed by the function: the same key with another request is refused.';
comment on column private.idempotency_keys.status is
  'The answer''s HTTP status (2xx only: an error answer is never stored). Null while a request that spans several transactions (KEK rotation) still runs.';
comment on column private.idempotency_keys.headers is 'The answer''s headers a replay repeats (Content-Type, ETag, Location, Cache-Control).';
comment on column private.idempotency_keys.ciphertext is
  'The answer''s body, AES-256-GCM under a fresh DEK wrapped by KEK kek_version, as secret values are; never plaintext.';
create index if not exists idempotency_keys_expires_at_idx on private.idempotency_keys (expires_at);
revoke all on private.idempotency_keys from public, anon, authenticated, service_role;
-- A stored answer is sealed with a fresh random IV under the KEK like a value version, so its
-- wrapping counts toward the KEK's random-IV budget (private.count_kek_wraps, key rotation).
create trigger idempotency_keys_count_wraps_on_insert
  after insert on private.idempotency_keys
  referencing new table as new_rows
  for each statement execute function private.count_kek_wraps();
create trigger idempotency_keys_count_wraps_on_update
  after update on private.idempotency_keys
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.count_kek_wraps();

-- The row key of (the caller, a key digest). The caller comes from the JWT claims the request
-- set, never from a parameter: a user is their id, the service role one caller.
create or replace function private.idempotency_key_hash(p_key_digest bytea) returns bytea
language plpgsql stable security definer set search_path = ''
as $$
declare
  who text := case
    when (select auth.role()) = 'service_role' then 'service'
    when (select auth.uid()) is not null then 'user:' || (select auth.uid())::text
  end;
begin
  if who is null then
    raise exception 'unauthenticated' using errcode = 'S0401';
  end if;
  if p_key_digest is null or octet_length(p_key_digest) <> 32 then
    raise exception 'invalid_request: the key digest must be 32 bytes' using errcode = 'S0400';
  end if;
  return sha256(convert_to(who, 'UTF8') || '\x00'::bytea || p_key_digest);
end
$$;
comment on function private.idempotency_key_hash(bytea) is
  'The row key of an idempotency key for the calling user or service role: SHA-256 of the caller and the key''s digest, so keys of different callers never meet and the key is not stored.';

-- Claims a key for this transaction, or reports what an earlier request did with it. A
-- concurrent request with the same key waits on the primary key until the first commits (then
-- sees its answer) or rolls back (then claims it itself). An expired row counts as absent.
create or replace function private.claim_idempotency_key(p_key_digest bytea, p_fingerprint bytea)
returns table (
  claim bytea, outcome text, status int, headers jsonb, enc_format int, iv bytea, ciphertext bytea,
  wrapped_dek bytea, kek_version int
)
language plpgsql volatile security definer set search_path = ''
as $$
declare
  k bytea;
  r private.idempotency_keys;
begin
  perform private.require_api_session();
  k := private.idempotency_key_hash(p_key_digest);
  if p_fingerprint is null or octet_length(p_fingerprint) <> 32 then
    raise exception 'invalid_request: the fingerprint must be 32 bytes' using errcode = 'S0400';
  end if;
  delete from private.idempotency_keys i where i.key_hash = k and i.expires_at <= now();
  insert into private.idempotency_keys (key_hash, fingerprint) values (k, p_fingerprint)
    on conflict on constraint idempotency_keys_pkey do nothing;
  if found then
    return query select k, 'claimed', null::int, null::jsonb, null::int, null::bytea, null::bytea, null::bytea, null::int;
    return;
  end if;
  -- A new statement, so a fresh snapshot: it sees the row whose commit the insert waited for.
  select * into r from private.idempotency_keys i where i.key_hash = k;
  if r.key_hash is null then
    raise exception 'conflict: the key was released meanwhile; retry' using errcode = 'S0409';
  end if;
  if r.fingerprint <> p_fingerprint then
    return query select k, 'mismatch', null::int, null::jsonb, null::int, null::bytea, null::bytea, null::bytea, null::int;
  elsif r.status is null then
    return query select k, 'in_flight', null::int, null::jsonb, null::int, null::bytea, null::bytea, null::bytea, null::int;
  else
    return query select k, 'replay', r.status::int, r.headers, r.enc_format::int, r.iv, r.ciphertext, r.wrapped_dek, r.kek_version;
  end if;
end
$$;
comment on function private.claim_idempotency_key(bytea, bytea) is
  'Claims the caller''s idempotency key (by its SHA-256) for this request, or says what an earlier request did with it: claimed, replay (with the stored answer), mismatch (another request used the key) or in_flight (a request spanning several transactions still runs).';

create or replace function private.store_idempotent_response(
  p_key_digest bytea, p_status int, p_headers jsonb, p_enc_format int, p_iv bytea, p_ciphertext bytea,
  p_wrapped_dek bytea, p_kek_version int
) returns void
language plpgsql volatile security definer set search_path = ''
as $$
begin
  perform private.require_api_session();
  update private.idempotency_keys i
     set status = p_status, headers = p_headers, enc_format = p_enc_format, iv = p_iv, ciphertext = p_ciphertext,
         wrapped_dek = p_wrapped_dek, kek_version = p_kek_version
   where i.key_hash = private.idempotency_key_hash(p_key_digest) and i.status is null;
  if not found then
    raise exception 'conflict: the idempotency key is not claimed by this request' using errcode = 'S0409';
  end if;
end
$$;
comment on function private.store_idempotent_response(bytea, int, jsonb, int, bytea, bytea, bytea, int) is
  'Stores the 2xx answer (status, headers, sealed body) on the caller''s claimed idempotency key, before the request commits; only a claim still without an answer takes one.';

create or replace function private.release_idempotency_key(p_key_digest bytea) returns void
language plpgsql volatile security definer set search_path = ''
as $$
begin
  perform private.require_api_session();
  delete from private.idempotency_keys i
   where i.key_hash = private.idempotency_key_hash(p_key_digest) and i.status is null;
end
$$;
comment on function private.release_idempotency_key(bytea) is
  'Drops the caller''s claim that has no answer yet, after a request spanning several transactions (KEK rotation) failed, so a retry with the key runs again.';

-- Removes expired keys, one bounded batch per run (oldest first, locked rows skipped), as the
-- other jobs do (20261128160500_jobs.sql). The job runs every minute: at the default batch
-- size that drains 60 000 keys an hour. An expired row is treated as absent by the claim even
-- before the purge reaches it.
create or replace function private.purge_idempotency_keys(p_now timestamptz default now()) returns int
language plpgsql security definer set search_path = ''
as $$
declare
  n int;
begin
  with due as (
    select i.key_hash from private.idempotency_keys i
     where i.expires_at <= p_now
     order by i.expires_at
     limit (select job_batch_size from private.settings)
     for update skip locked)
  delete from private.idempotency_keys i using due where i.key_hash = due.key_hash;
  get diagnostics n = row_count;
  return n;
end
$$;
comment on function private.purge_idempotency_keys(timestamptz) is
  'Job: removes idempotency keys past their 24 hours. One batch of at most private.settings.job_batch_size per call (oldest first, locked rows skipped); the job runs every minute.';

revoke all on function
  private.idempotency_key_hash(bytea),
  private.claim_idempotency_key(bytea, bytea),
  private.store_idempotent_response(bytea, int, jsonb, int, bytea, bytea, bytea, int),
  private.release_idempotency_key(bytea),
  private.purge_idempotency_keys(timestamptz)
  from public, anon, authenticated, service_role;
grant execute on function
  private.claim_idempotency_key(bytea, bytea),
  private.store_idempotent_response(bytea, int, jsonb, int, bytea, bytea, bytea, int),
  private.release_idempotency_key(bytea)
  to authenticated, service_role;
