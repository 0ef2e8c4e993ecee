-- Keyring: key-encryption keys (KEKs) live in Supabase Vault, one Vault secret per version.
-- This table only maps a KEK version to its Vault row and tracks its life cycle; it never
-- holds key material.

create table if not exists private.key_versions (
  version int primary key check (version > 0),
  vault_secret_id uuid not null unique,
  status text not null check (status in ('active', 'retiring', 'retired')),
  created_at timestamptz not null default now(),
  retired_at timestamptz
);
comment on table private.key_versions is
  'KEK versions. Material is in vault.secrets (name sigyl_kek_vN); exactly one version is active.';
comment on column private.key_versions.status is
  'active: wraps new DEKs; retiring: still wraps some DEKs, being re-wrapped; retired: wraps nothing.';

create unique index if not exists key_versions_one_active
  on private.key_versions ((true)) where status = 'active';

revoke all on private.key_versions from public, anon, authenticated;

-- Creates KEK version p_version in Vault and returns its Vault row id. The key is born here
-- from random bytes, so it never exists in a file, a migration literal, an environment
-- variable or a log. Nor in the WAL: Vault's create_secret inserts the value it is given
-- and encrypts it by a second UPDATE, so the inserted row image holds it in plaintext, and
-- row images reach the WAL (and so replicas, PITR archives and backups). The row is
-- therefore created with a placeholder, and the key set by update_secret, which encrypts it
-- within its one UPDATE.
create or replace function private.create_kek(p_version int) returns uuid
language plpgsql volatile security definer set search_path = ''
as $$
declare
  placeholder constant text := 'pending';
  vault_id uuid;
begin
  vault_id := vault.create_secret(placeholder, 'sigyl_kek_v' || p_version,
    'Sigyl Secrets key-encryption key, version ' || p_version);
  perform vault.update_secret(vault_id, encode(extensions.gen_random_bytes(32), 'base64'));
  return vault_id;
end
$$;
comment on function private.create_kek(int) is
  'Creates KEK version p_version in Vault from 32 random bytes (placeholder row first, key set by update_secret so it is never in a row image) and returns the Vault row id. Owner only.';
revoke all on function private.create_kek(int) from public, anon, authenticated, service_role;

-- The first KEK.
do $kek$
begin
  if not exists (select 1 from private.key_versions) then
    insert into private.key_versions (version, vault_secret_id, status)
    values (1, private.create_kek(1), 'active');
  end if;
end
$kek$;

-- Loads the key material for the function's keyring (once per function instance). Only the
-- connection owner may call it: not anon, not authenticated, not service_role over REST.
-- Only the active and retiring keys: a retired key wraps no DEK (retirement waits for the
-- last re-wrap, and a trigger refuses any version under it), so no instance needs it, and a
-- key an instance does not hold cannot leak from its memory. Its material stays in Vault for
-- backups taken before the rotation.
create or replace function private.load_keyring()
returns table (version int, status text, material text)
language sql stable security definer set search_path = ''
as $$
  select k.version, k.status, s.decrypted_secret
    from private.key_versions k
    join vault.decrypted_secrets s on s.id = k.vault_secret_id
   where k.status in ('active', 'retiring')
   order by k.version
$$;
comment on function private.load_keyring() is
  'Material of the active and retiring KEKs (never a retired one) for the function''s keyring, read from Vault once per instance. Owner only: no REST role may see a key.';
revoke all on function private.load_keyring() from public, anon, authenticated, service_role;
-- The function's own login (sigyl_api) loads its keyring; no REST role can.
grant execute on function private.load_keyring() to sigyl_api;
