-- The write path and the value read, as security-definer helpers the function calls while
-- acting as the caller. Each checks the caller's level itself (the REST API cannot reach
-- them: `private` is not an exposed schema). Errors use SQLSTATE class 'S0' with a stable
-- code as the message; the function maps them to HTTP once:
--   S0400 bad request, S0403 forbidden, S0404 not found, S0409 conflict, S0410 gone.

-- Locks the secret row and returns it with the caller's level; a secret the caller cannot
-- see is reported exactly like one that does not exist. The level is checked before the lock,
-- so a caller who may not change the secret never makes its writers wait, and again once the
-- lock is held, since a grant, revoke or delete may have committed while we waited for it.
create or replace function private.lock_secret_for(p_id uuid, p_min_level text, out s public.secrets, out level text)
language plpgsql security definer set search_path = ''
as $$
begin
  perform private.require_api_session();
  level := private.caller_permission(p_id);
  if level is null then
    raise exception 'secret_not_found' using errcode = 'S0404';
  end if;
  if private.permission_rank(level) < private.permission_rank(p_min_level) then
    raise exception 'forbidden' using errcode = 'S0403';
  end if;

  select * into s from public.secrets where id = p_id for update;
  -- A new statement, so a fresh snapshot: this sees what committed while we waited.
  level := private.caller_permission(p_id);
  if s.id is null or level is null then
    raise exception 'secret_not_found' using errcode = 'S0404';
  end if;
  if private.permission_rank(level) < private.permission_rank(p_min_level) then
    raise exception 'forbidden' using errcode = 'S0403';
  end if;
end
$$;
comment on function private.lock_secret_for(uuid, text) is
  'Checks the caller holds p_min_level, then locks the secret for a change and checks again; an invisible secret is reported as secret_not_found, so existence never leaks and a stranger never holds a lock.';

-- What the function seals, checked again by the database (shared/crypto/envelope.ts, format
-- 1): a 12-byte IV, a ciphertext of 1 to 65,536 value bytes (MAX_VALUE_BYTES) plus its 16-byte
-- tag, a wrapped DEK of 60 bytes (IV 12 || DEK 32 || tag 16), under the active KEK. A write
-- under a KEK that a rotation has moved past is refused as kek_retired, on which the function
-- reloads its keyring and seals again; a KEK that does not exist is bad input.
create or replace function private.check_sealed_value(p_iv bytea, p_ciphertext bytea, p_wrapped_dek bytea, p_kek_version int)
returns void
language plpgsql stable set search_path = ''
as $$
declare
  kek_status text;
begin
  if octet_length(p_iv) is distinct from 12
     or coalesce(octet_length(p_ciphertext), 0) not between 17 and 65536 + 16
     or octet_length(p_wrapped_dek) is distinct from 60 then
    raise exception 'invalid_request: the sealed value does not have the envelope''s lengths' using errcode = 'S0400';
  end if;
  select k.status into kek_status from private.key_versions k where k.version = p_kek_version;
  if kek_status is null then
    raise exception 'invalid_request: no such KEK version' using errcode = 'S0400';
  end if;
  if kek_status <> 'active' then
    raise exception 'kek_retired' using errcode = 'S0409';
  end if;
end
$$;
comment on function private.check_sealed_value(bytea, bytea, bytea, int) is
  'Refuses a sealed value whose IV, ciphertext or wrapped DEK lengths are not the envelope''s, or whose KEK is not the active one (kek_retired: the function reloads its keyring and seals again).';
revoke all on function private.check_sealed_value(bytea, bytea, bytea, int) from public, anon, authenticated, service_role;

create or replace function private.create_secret(
  p_id uuid, p_owner uuid, p_name text, p_type public.secret_type, p_description text,
  p_tags text[], p_expires_at timestamptz,
  p_iv bytea, p_ciphertext bytea, p_wrapped_dek bytea, p_kek_version int
) returns public.secrets
language plpgsql security definer set search_path = ''
as $$
declare
  owner uuid;
  created public.secrets;
begin
  perform private.require_api_session();
  perform private.check_sealed_value(p_iv, p_ciphertext, p_wrapped_dek, p_kek_version);
  if (select auth.role()) = 'service_role' then
    owner := p_owner;
    if owner is null then raise exception 'owner_required' using errcode = 'S0400'; end if;
    if not exists (select 1 from auth.users where id = owner) then
      raise exception 'user_not_found' using errcode = 'S0404';
    end if;
  else
    owner := (select auth.uid());
    if owner is null or (p_owner is not null and p_owner <> owner) then
      raise exception 'forbidden' using errcode = 'S0403';
    end if;
  end if;

  insert into public.secrets (id, user_id, name, secret_type, description, tags, expires_at, current_version)
  values (p_id, owner, p_name, p_type, coalesce(p_description, ''), coalesce(p_tags, '{}'), p_expires_at, 1)
  returning * into created;
  insert into public.secret_versions (secret_id, version, iv, ciphertext, wrapped_dek, kek_version, created_by)
  values (p_id, 1, p_iv, p_ciphertext, p_wrapped_dek, p_kek_version, (select auth.uid()));
  return created;
end
$$;
comment on function private.create_secret(uuid, uuid, text, public.secret_type, text, text[], timestamptz, bytea, bytea, bytea, int) is
  'Creates a secret and its first sealed version. Users create for themselves; only the service role names another owner.';

-- Metadata edit: only the keys present in the patch change.
create or replace function private.update_secret(p_id uuid, p_patch jsonb) returns public.secrets
language plpgsql security definer set search_path = ''
as $$
declare
  cur public.secrets;
  updated public.secrets;
begin
  perform private.require_api_session();
  select (l.s).* into cur from private.lock_secret_for(p_id, 'write') l;
  if cur.deleted_at is not null then raise exception 'secret_deleted' using errcode = 'S0410'; end if;
  update public.secrets set
    name = case when p_patch ? 'name' then p_patch ->> 'name' else name end,
    secret_type = case when p_patch ? 'secretType' then (p_patch ->> 'secretType')::public.secret_type else secret_type end,
    description = case when p_patch ? 'description' then coalesce(p_patch ->> 'description', '') else description end,
    tags = case when p_patch ? 'tags'
                then coalesce((select array_agg(t) from jsonb_array_elements_text(p_patch -> 'tags') t), '{}')
                else tags end,
    expires_at = case when p_patch ? 'expiresAt' then (p_patch ->> 'expiresAt')::timestamptz else expires_at end,
    is_active = case when p_patch ? 'isActive' then (p_patch ->> 'isActive')::boolean else is_active end,
    updated_at = now()
  where id = p_id
  returning * into updated;
  return updated;
end
$$;
comment on function private.update_secret(uuid, jsonb) is
  'Edits metadata (writers and up): only the keys present in the patch change, so a partial update never blanks a field.';

-- New value version with check-and-set on the current version. The row lock serialises
-- concurrent writers: of N callers holding the same expected version exactly one wins.
create or replace function private.put_value(
  p_id uuid, p_expected_version int,
  p_iv bytea, p_ciphertext bytea, p_wrapped_dek bytea, p_kek_version int,
  p_restored_from int default null
) returns public.secrets
language plpgsql security definer set search_path = ''
as $$
declare
  cur public.secrets;
  updated public.secrets;
begin
  perform private.require_api_session();
  select (l.s).* into cur from private.lock_secret_for(p_id, 'write') l;
  if cur.deleted_at is not null then raise exception 'secret_deleted' using errcode = 'S0410'; end if;
  perform private.check_sealed_value(p_iv, p_ciphertext, p_wrapped_dek, p_kek_version);
  if cur.current_version <> p_expected_version then
    raise exception 'version_conflict' using errcode = 'S0409';
  end if;
  insert into public.secret_versions (secret_id, version, iv, ciphertext, wrapped_dek, kek_version, created_by, restored_from)
  values (p_id, p_expected_version + 1, p_iv, p_ciphertext, p_wrapped_dek, p_kek_version, (select auth.uid()), p_restored_from);
  update public.secrets set current_version = p_expected_version + 1, updated_at = now()
   where id = p_id returning * into updated;
  return updated;
end
$$;
comment on function private.put_value(uuid, int, bytea, bytea, bytea, int, int) is
  'Adds a value version with check-and-set on the current version (writers and up): of concurrent writers on one version exactly one wins.';

-- The one value read. Writes 'accessed' (or 'denied') in the caller's transaction, so the
-- ciphertext never leaves without its audit row. Returns an outcome instead of raising so a
-- denial's audit row commits.
create or replace function private.read_value(p_id uuid, p_version int default null)
returns table (outcome text, version int, enc_format smallint, iv bytea, ciphertext bytea,
               wrapped_dek bytea, kek_version int)
language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  s public.secrets;
  level text;
  v public.secret_versions;
  reason text;
begin
  perform private.require_api_session();
  select * into s from public.secrets where id = p_id;
  level := private.caller_permission(p_id);
  if s.id is null or level is null then
    outcome := 'secret_not_found'; return next; return;
  end if;
  reason := case
    when private.permission_rank(level) < private.permission_rank('read') then 'forbidden'
    when s.deleted_at is not null then 'secret_deleted'
    when s.expires_at is not null and s.expires_at <= now() then 'secret_expired'
    when not s.is_active then 'secret_inactive'
  end;
  if reason is not null then
    perform private.write_audit(s.id, s.name, s.user_id, 'denied', p_version,
      jsonb_build_object('reason', reason), 'denied');
    outcome := reason; return next; return;
  end if;
  select * into v from public.secret_versions sv
   where sv.secret_id = p_id and sv.version = coalesce(p_version, s.current_version);
  if v.secret_id is null then
    outcome := 'version_not_found'; return next; return;
  end if;
  perform private.write_audit(s.id, s.name, s.user_id, 'accessed', v.version);
  outcome := 'ok'; version := v.version; enc_format := v.enc_format; iv := v.iv;
  ciphertext := v.ciphertext; wrapped_dek := v.wrapped_dek; kek_version := v.kek_version;
  return next;
end
$$;
comment on function private.read_value(uuid, int) is
  'The one value read: returns the sealed value with its accessed row, or an outcome with its denied row, so no read goes unaudited.';

-- The ciphertext of version n for a roll back by a writer: decrypted and re-sealed as the
-- next version by the function; the value never reaches the caller, so no 'accessed' row.
create or replace function private.version_for_rollback(p_id uuid, p_version int)
returns table (current_version int, version int, enc_format smallint, iv bytea, ciphertext bytea,
               wrapped_dek bytea, kek_version int)
language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  cur public.secrets;
begin
  perform private.require_api_session();
  select (l.s).* into cur from private.lock_secret_for(p_id, 'write') l;
  if cur.deleted_at is not null then raise exception 'secret_deleted' using errcode = 'S0410'; end if;
  return query
    select cur.current_version, sv.version, sv.enc_format, sv.iv, sv.ciphertext, sv.wrapped_dek, sv.kek_version
      from public.secret_versions sv where sv.secret_id = p_id and sv.version = p_version;
  if not found then raise exception 'version_not_found' using errcode = 'S0404'; end if;
end
$$;
comment on function private.version_for_rollback(uuid, int) is
  'A version''s ciphertext for the function to re-seal as the next version (writers and up); the value never reaches the caller, hence no accessed row.';

create or replace function private.set_deleted(p_id uuid, p_deleted boolean) returns public.secrets
language plpgsql security definer set search_path = ''
as $$
declare
  cur public.secrets;
  updated public.secrets;
begin
  perform private.require_api_session();
  select (l.s).* into cur from private.lock_secret_for(p_id, 'admin') l;
  if p_deleted and cur.deleted_at is not null then
    raise exception 'secret_deleted' using errcode = 'S0410';
  end if;
  if not p_deleted and cur.deleted_at is null then
    raise exception 'secret_not_deleted' using errcode = 'S0409';
  end if;
  -- Past the recovery window the secret only waits for the purge job.
  if not p_deleted and cur.deleted_at <= now() - (select deleted_retention from private.settings) then
    raise exception 'recovery_window_passed' using errcode = 'S0410';
  end if;
  update public.secrets set deleted_at = case when p_deleted then now() end, updated_at = now()
   where id = p_id returning * into updated;
  return updated;
end
$$;
comment on function private.set_deleted(uuid, boolean) is
  'Soft delete and restore (admins and owners); restore is refused once the recovery window has passed, as the purge job may run at any moment.';

create or replace function private.list_grants(p_id uuid)
returns table (user_id uuid, email text, permission public.secret_permission, granted_by uuid, granted_at timestamptz)
language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
begin
  perform private.require_api_session();
  perform private.lock_secret_for(p_id, 'admin');
  return query
    select p.user_id, u.email::text, p.permission, p.granted_by, p.granted_at
      from public.secret_permissions p join auth.users u on u.id = p.user_id
     where p.secret_id = p_id
     order by p.granted_at, p.user_id;
end
$$;
comment on function private.list_grants(uuid) is
  'Grants of a secret with the grantees'' emails (admins and owners); auth.users is not readable over REST, hence a definer.';

-- Grants by user id or email; re-granting changes the level.
create or replace function private.grant_permission(p_id uuid, p_grantee uuid, p_email text, p_permission public.secret_permission)
returns table (user_id uuid, email text, permission public.secret_permission, granted_by uuid, granted_at timestamptz)
language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  cur public.secrets;
  grantee auth.users;
begin
  perform private.require_api_session();
  select (l.s).* into cur from private.lock_secret_for(p_id, 'admin') l;
  if cur.deleted_at is not null then raise exception 'secret_deleted' using errcode = 'S0410'; end if;
  select * into grantee from auth.users u
   where (p_grantee is not null and u.id = p_grantee)
      or (p_grantee is null and lower(u.email) = lower(p_email));
  if grantee.id is null then raise exception 'user_not_found' using errcode = 'S0404'; end if;
  if grantee.id = cur.user_id then raise exception 'cannot_grant_owner' using errcode = 'S0400'; end if;
  insert into public.secret_permissions as p (secret_id, user_id, permission, granted_by)
  values (p_id, grantee.id, p_permission, (select auth.uid()))
  on conflict (secret_id, user_id) do update
    set permission = excluded.permission, granted_by = excluded.granted_by, granted_at = now()
    where p.permission is distinct from excluded.permission;
  return query
    select p.user_id, grantee.email::text, p.permission, p.granted_by, p.granted_at
      from public.secret_permissions p where p.secret_id = p_id and p.user_id = grantee.id;
end
$$;
comment on function private.grant_permission(uuid, uuid, text, public.secret_permission) is
  'Grants or changes a level by user id or email (admins and owners); re-granting the same level writes nothing, so no empty audit row.';

-- Admins revoke anyone's grant; a grantee may always drop its own.
create or replace function private.revoke_permission(p_id uuid, p_grantee uuid) returns void
language plpgsql security definer set search_path = ''
as $$
declare
  level text := private.caller_permission(p_id);
begin
  perform private.require_api_session();
  if level is null then raise exception 'secret_not_found' using errcode = 'S0404'; end if;
  if p_grantee is distinct from (select auth.uid()) then
    perform private.lock_secret_for(p_id, 'admin');
  end if;
  delete from public.secret_permissions p where p.secret_id = p_id and p.user_id = p_grantee;
  if not found then raise exception 'grant_not_found' using errcode = 'S0404'; end if;
end
$$;
comment on function private.revoke_permission(uuid, uuid) is
  'Removes a grant: admins and owners remove any, a grantee its own, so nobody is stuck with a share.';

revoke all on function
  private.lock_secret_for(uuid, text),
  private.create_secret(uuid, uuid, text, public.secret_type, text, text[], timestamptz, bytea, bytea, bytea, int),
  private.update_secret(uuid, jsonb),
  private.put_value(uuid, int, bytea, bytea, bytea, int, int),
  private.read_value(uuid, int),
  private.version_for_rollback(uuid, int),
  private.set_deleted(uuid, boolean),
  private.list_grants(uuid),
  private.grant_permission(uuid, uuid, text, public.secret_permission),
  private.revoke_permission(uuid, uuid)
  from public, anon;
grant execute on function
  private.lock_secret_for(uuid, text),
  private.create_secret(uuid, uuid, text, public.secret_type, text, text[], timestamptz, bytea, bytea, bytea, int),
  private.update_secret(uuid, jsonb),
  private.put_value(uuid, int, bytea, bytea, bytea, int, int),
  private.read_value(uuid, int),
  private.version_for_rollback(uuid, int),
  private.set_deleted(uuid, boolean),
  private.list_grants(uuid),
  private.grant_permission(uuid, uuid, text, public.secret_permission),
  private.revoke_permission(uuid, uuid)
  to authenticated, service_role;
