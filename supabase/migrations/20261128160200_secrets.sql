-- Secrets: metadata, immutable value versions and grants, guarded by RLS.
--
-- Reshaped from the seed's single `secrets` table (value columns inline) after Vault KV v2:
--   * metadata (name, type, tags, expiry, current_version) lives apart from the value;
--   * every value is an immutable `secret_versions` row holding only ciphertext;
--   * `secret_permissions` gains the `use` level and `granted_by`.
--
-- Access model. Reads go through RLS as `authenticated`. Writes never do: the REST API's
-- roles hold no INSERT/UPDATE/DELETE on these tables. The function performs writes by
-- calling security-definer helpers in `private` (not exposed over REST) after it has
-- validated the input and encrypted the value, and each helper checks the caller's level.
-- So a signed-in user cannot skip encryption or validation through the REST API.

create type public.secret_type as enum ('api_key', 'database_url', 'jwt_secret', 'custom');
-- Declared weakest first: enum order gives `>=` comparisons between levels.
create type public.secret_permission as enum ('use', 'read', 'write', 'admin');

-- Tags: at most 20, each 1-64 characters.
create or replace function private.tags_are_valid(tags text[]) returns boolean
language sql immutable set search_path = ''
as $$
  select coalesce(cardinality(tags), 0) <= 20
     and not exists (select 1 from unnest(tags) t where t is null or char_length(t) not between 1 and 64)
$$;
comment on function private.tags_are_valid(text[]) is
  'The check on secrets.tags (at most 20 tags of 1-64 characters), in a function because a check constraint cannot hold a subquery.';

create table public.secrets (
  id uuid primary key default extensions.gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  name text not null check (name ~ '^[A-Za-z_][A-Za-z0-9_.-]{0,127}$'),
  secret_type public.secret_type not null default 'custom',
  description text not null default '' check (char_length(description) <= 1000),
  tags text[] not null default '{}' check (private.tags_are_valid(tags)),
  is_active boolean not null default true,
  expires_at timestamptz,
  current_version int not null default 0 check (current_version >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz
);
comment on table public.secrets is
  'Secret metadata (never the value). One row per secret; values live in secret_versions.';
comment on column public.secrets.user_id is 'Owner; implicitly admin. Deleting the user deletes the secret.';
comment on column public.secrets.current_version is 'The version a plain value read returns; bumped by each new value.';
comment on column public.secrets.deleted_at is 'Soft delete: restorable until the recovery window ends, then purged.';

-- A name is unique per owner among live secrets; a deleted one frees its name.
create unique index secrets_live_name_per_owner on public.secrets (user_id, name) where deleted_at is null;
create index secrets_owner_listing on public.secrets (user_id, name, id);
create index secrets_expiring on public.secrets (expires_at)
  where is_active and deleted_at is null and expires_at is not null;
create index secrets_deleted on public.secrets (deleted_at) where deleted_at is not null;

create table public.secret_versions (
  secret_id uuid not null references public.secrets (id) on delete cascade,
  version int not null check (version > 0),
  enc_format smallint not null default 1 check (enc_format = 1),
  iv bytea not null check (octet_length(iv) = 12),
  ciphertext bytea not null check (octet_length(ciphertext) >= 17),
  wrapped_dek bytea not null check (octet_length(wrapped_dek) = 60),
  kek_version int not null references private.key_versions (version),
  restored_from int,
  created_by uuid,
  created_at timestamptz not null default now(),
  primary key (secret_id, version)
);
comment on table public.secret_versions is
  'Immutable value versions: AES-256-GCM ciphertext under a per-version DEK, the DEK wrapped by a KEK.';
comment on column public.secret_versions.iv is '96-bit random IV of the value ciphertext.';
comment on column public.secret_versions.ciphertext is 'Value ciphertext with its 16-byte GCM tag; AAD binds secret id and version.';
comment on column public.secret_versions.wrapped_dek is 'IV (12) || wrapped DEK (32) || tag (16); AAD binds secret id, version and KEK version.';
comment on column public.secret_versions.enc_format is 'Blob format; 1 = AES-256-GCM envelope as above.';
comment on column public.secret_versions.restored_from is 'Set when this version rolls back to an older one.';
comment on column public.secret_versions.created_by is 'The user who wrote it; null for the service role.';
create index secret_versions_by_kek on public.secret_versions (kek_version);

create table public.secret_permissions (
  secret_id uuid not null references public.secrets (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  permission public.secret_permission not null,
  granted_by uuid,
  granted_at timestamptz not null default now(),
  primary key (secret_id, user_id)
);
comment on table public.secret_permissions is
  'Grants to users other than the owner: use < read < write < admin.';
comment on column public.secret_permissions.permission is
  'use: bind to own deployments, never see the value; read: value; write: new versions and metadata; admin: delete, grants, audit.';
-- RLS filters by grantee first.
create index secret_permissions_by_grantee on public.secret_permissions (user_id, secret_id);

-- Versions never change, except the KEK rotation's re-wrap of the DEK.
create or replace function private.forbid_version_rewrite() returns trigger
language plpgsql set search_path = ''
as $$
begin
  if new.secret_id is distinct from old.secret_id or new.version is distinct from old.version
     or new.iv is distinct from old.iv or new.ciphertext is distinct from old.ciphertext
     or new.enc_format is distinct from old.enc_format or new.created_at is distinct from old.created_at
     or new.created_by is distinct from old.created_by or new.restored_from is distinct from old.restored_from then
    raise exception 'secret versions are immutable' using errcode = 'P0001';
  end if;
  return new;
end
$$;
comment on function private.forbid_version_rewrite() is
  'Trigger: a version''s value never changes, so an old read stays true; only the KEK rotation may change wrapped_dek and kek_version.';
-- The condition is the trigger's WHEN clause, evaluated without entering PL/pgSQL: a rotation
-- batch updates hundreds of rows, and calling the function for each cost a third of the batch.
-- The function still checks the same (a trigger fired without the clause refuses alike).
create trigger secret_versions_immutable before update on public.secret_versions
  for each row when (
    new.secret_id is distinct from old.secret_id or new.version is distinct from old.version
    or new.iv is distinct from old.iv or new.ciphertext is distinct from old.ciphertext
    or new.enc_format is distinct from old.enc_format or new.created_at is distinct from old.created_at
    or new.created_by is distinct from old.created_by or new.restored_from is distinct from old.restored_from)
  execute function private.forbid_version_rewrite();

-- Caller's level on a secret -------------------------------------------------------------

-- 'owner' | 'admin' | 'write' | 'read' | 'use' | null (not visible). The service role is
-- treated as owner of everything. A deleted secret is visible only to those who may restore
-- it (owner, admins, service role): every helper and route that asks here answers everyone
-- else exactly as for a secret that does not exist. Security definer so RLS policies can call
-- it without recursing through the policies of secret_permissions.
--
-- The hot helpers here are PL/pgSQL, not SQL: a SQL function that cannot be inlined (security
-- definer, or SET search_path) is parsed and planned again in every statement that calls it,
-- while PL/pgSQL keeps its plans for the session. caller_permission runs in every value read,
-- write and listing.
create or replace function private.caller_permission(p_secret_id uuid) returns text
language plpgsql stable security definer set search_path = ''
as $$
declare
  caller uuid := auth.uid();
  owner_id uuid;
  deleted_at timestamptz;
  level text;
begin
  select s.user_id, s.deleted_at into owner_id, deleted_at from public.secrets s where s.id = p_secret_id;
  if not found then
    return null;
  end if;
  if auth.role() = 'service_role' or owner_id = caller then
    return 'owner';
  end if;
  select p.permission::text into level
    from public.secret_permissions p
   where p.secret_id = p_secret_id and p.user_id = caller;
  if deleted_at is not null and level is distinct from 'admin' then
    return null;
  end if;
  return level;
end
$$;
comment on function private.caller_permission(uuid) is
  'The caller''s level on a secret: owner (also the service role), admin, write, read, use, or null when it is not visible (a deleted secret is visible only to its owner and admins).';

create or replace function private.permission_rank(level text) returns int
language sql immutable set search_path = ''
as $$
  select case level when 'owner' then 5 when 'admin' then 4 when 'write' then 3
                    when 'read' then 2 when 'use' then 1 else 0 end
$$;
comment on function private.permission_rank(text) is
  'Orders the levels caller_permission returns (owner 5 … use 1, none 0), so a helper can require "at least" a level.';

-- Secret ids shared with the caller at `min_level` or above. PL/pgSQL for its session-long
-- plan, like caller_permission.
create or replace function private.shared_secret_ids(min_level public.secret_permission default 'use')
returns setof uuid
language plpgsql stable security definer set search_path = ''
as $$
begin
  return query
    select p.secret_id from public.secret_permissions p
     where p.user_id = auth.uid() and p.permission >= min_level;
end
$$;
comment on function private.shared_secret_ids(public.secret_permission) is
  'Ids of the secrets shared with the caller at min_level or above (policies use it as = any (array(...))).';

revoke all on all functions in schema private from public, anon;
grant execute on function private.caller_permission(uuid), private.permission_rank(text),
  private.shared_secret_ids(public.secret_permission), private.tags_are_valid(text[])
  to authenticated, service_role;

-- Privileges: reads only, and never the ciphertext columns ---------------------------------
-- The service role too: its key over REST must not write around the encryption, the level
-- checks or the audit (move an owner, drop a version, read ciphertext unaudited). The
-- function's service-role calls write through the private helpers like everyone else's.
revoke all on public.secrets, public.secret_versions, public.secret_permissions
  from anon, authenticated, service_role;
grant select on public.secrets, public.secret_permissions to authenticated, service_role;
grant select (secret_id, version, enc_format, kek_version, restored_from, created_by, created_at)
  on public.secret_versions to authenticated, service_role;

alter table public.secrets enable row level security;
alter table public.secret_versions enable row level security;
alter table public.secret_permissions enable row level security;

-- The policies name a set of secrets as `= any (array(select …))`, not `in (select …)`: the
-- array is computed once (an InitPlan) and is an indexable condition, so "own or shared"
-- becomes index scans under a BitmapOr. An OR with a hashed `in` subplan cannot use an index
-- and reads the whole table.

create policy "Owners and grantees see a secret's metadata; once deleted, only its owner and admins"
  on public.secrets for select to authenticated
  using (user_id = (select auth.uid())
         or id = any (array(select private.shared_secret_ids('admin')))
         or (deleted_at is null and id = any (array(select private.shared_secret_ids('use')))));
comment on policy "Owners and grantees see a secret's metadata; once deleted, only its owner and admins" on public.secrets is
  'A deleted secret is hidden from grantees below admin: only those who may restore it keep seeing it.';

create policy "Owners and grantees with read can list a secret's versions; once deleted, only its owner and admins"
  on public.secret_versions for select to authenticated
  using (secret_id = any (array(select s.id from public.secrets s where s.user_id = (select auth.uid())))
         or secret_id = any (array(select private.shared_secret_ids('admin')))
         or secret_id = any (array(select s.id from public.secrets s
                                    where s.deleted_at is null
                                      and s.id = any (array(select private.shared_secret_ids('read'))))));
comment on policy "Owners and grantees with read can list a secret's versions; once deleted, only its owner and admins" on public.secret_versions is
  'Version history is part of reading a secret, so use alone (bind, never see) does not show it, nor does read once the secret is deleted (as for its metadata); the ciphertext columns are not granted at all.';

create policy "Grantees see their own grant; owners and admins see every grant of the secret"
  on public.secret_permissions for select to authenticated
  using (user_id = (select auth.uid())
         or secret_id = any (array(select s.id from public.secrets s where s.user_id = (select auth.uid())))
         or secret_id = any (array(select private.shared_secret_ids('admin'))));
comment on policy "Grantees see their own grant; owners and admins see every grant of the secret" on public.secret_permissions is
  'Who else holds a secret is for those who manage its grants; a grantee learns only its own level.';
