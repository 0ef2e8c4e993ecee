-- Platform stand-in: what a hosted Supabase project already provides, recreated for local
-- development and tests (embedded PGlite, or a plain PostgreSQL 15). Hosted Supabase
-- provides all of it: this file is never pushed and never sits under supabase/migrations/.
--
-- It is idempotent (run before the migrations on every start) and mirrors Supabase's own
-- definitions where our code depends on them:
--   * roles anon, authenticated, service_role (bypassrls) and authenticator (the role
--     PostgREST logs in as and switches from);
--   * the auth schema: auth.users (the columns we touch) and auth.uid() / auth.role() /
--     auth.jwt(), reading `request.jwt.claims` exactly as Supabase's functions do; and
--     auth.sessions / auth.refresh_tokens for the local sign-in stand-in;
--   * the extensions schema with pgcrypto;
--   * Supabase Vault: on PostgreSQL where the real extension is installed and preloaded
--     (scripts/setup-postgres.sh builds it), the extension itself, with the privileges hosted
--     Supabase grants on it; elsewhere (PGlite, a server without it) a stand-in with its API
--     (vault.secrets, vault.create_secret, vault.update_secret, the vault.decrypted_secrets
--     view) and the same privileges: service_role reads and deletes secrets and calls the
--     two functions; anon and authenticated get nothing. The stand-in encrypts with a root
--     key generated inside the database, as Vault does with its server-held key.
--   * Supabase's default privileges on schema public (new tables and functions are
--     granted to anon, authenticated and service_role), so migrations must revoke what
--     the REST API must not reach, exactly as on a hosted project.

do $roles$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator noinherit login;
  end if;
end
$roles$;

grant anon, authenticated, service_role to authenticator;

-- extensions -------------------------------------------------------------------------
create schema if not exists extensions;
grant usage on schema extensions to anon, authenticated, service_role;
create extension if not exists pgcrypto with schema extensions;

-- auth -------------------------------------------------------------------------------
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

create table if not exists auth.users (
  id uuid primary key default extensions.gen_random_uuid(),
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  raw_app_meta_data jsonb default '{}'::jsonb,
  raw_user_meta_data jsonb default '{}'::jsonb,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  deleted_at timestamptz
);
create unique index if not exists users_email_key on auth.users (lower(email));
-- Columns the local sign-in stand-in (scripts/lib/auth/) reads and writes, with hosted
-- Supabase's names and types. Added one by one so a database made by an earlier stand-in
-- gains them on its next start. The password is only ever a bcrypt hash, as GoTrue keeps it.
alter table auth.users add column if not exists encrypted_password varchar(255);
alter table auth.users add column if not exists email_confirmed_at timestamptz;
alter table auth.users add column if not exists last_sign_in_at timestamptz;

-- Sign-in sessions and their refresh tokens, shaped like GoTrue's auth.sessions and
-- auth.refresh_tokens (the columns the stand-in uses). Signing out deletes a session, and its
-- refresh tokens go with it. Unlike GoTrue, `token` and `parent` hold the SHA-256 of a token
-- (base64url), never the token: a copy of this table lets nobody refresh a session.
create table if not exists auth.sessions (
  id uuid primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  refreshed_at timestamptz,
  user_agent text,
  ip text
);
create index if not exists sessions_user_id_idx on auth.sessions (user_id);

create table if not exists auth.refresh_tokens (
  id bigserial primary key,
  token varchar(255) not null unique,
  user_id uuid not null references auth.users (id) on delete cascade,
  parent varchar(255),
  session_id uuid not null references auth.sessions (id) on delete cascade,
  revoked boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index if not exists refresh_tokens_session_id_revoked_idx on auth.refresh_tokens (session_id, revoked);
-- Only Supabase Auth touches these, as hosted: no API role reads a session or a token.
revoke all on auth.sessions, auth.refresh_tokens from public, anon, authenticated, service_role;
revoke all on sequence auth.refresh_tokens_id_seq from public, anon, authenticated, service_role;

-- The same bodies Supabase ships: the legacy per-claim setting first, then the JSON claims.
create or replace function auth.uid() returns uuid
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.email() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
  to anon, authenticated, service_role;
grant select on auth.users to service_role;

-- vault ------------------------------------------------------------------------------
-- The real extension where the server has it: installed, and preloaded (the getkey script
-- setting exists only then; without the root key Vault cannot encrypt). A database that
-- already holds the stand-in keeps it, since its secrets are sealed under the stand-in's key.
do $vault$
begin
  if not exists (select 1 from pg_extension where extname = 'supabase_vault')
     and to_regnamespace('vault') is null
     and exists (select 1 from pg_available_extensions where name = 'supabase_vault')
     and current_setting('vault.getkey_script', true) is not null then
    create extension supabase_vault;
  end if;
end
$vault$;

-- The stand-in, where the real extension is not in this database.
do $stand_in$
begin
  if exists (select 1 from pg_extension where extname = 'supabase_vault') then
    return;
  end if;

  create schema if not exists vault;

  -- The root key never leaves this table; only the owner (postgres) can read it.
  create table if not exists vault._root_key (
    id boolean primary key default true check (id),
    key text not null
  );
  revoke all on vault._root_key from public;
  insert into vault._root_key (key)
    values (encode(extensions.gen_random_bytes(32), 'base64'))
    on conflict (id) do nothing;

  create table if not exists vault.secrets (
    id uuid primary key default extensions.gen_random_uuid(),
    name text,
    description text not null default '',
    secret text not null,
    key_id uuid,
    nonce bytea,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
  );
  create unique index if not exists secrets_name_idx on vault.secrets (name) where name is not null;

  create or replace function vault._encrypt(plain text) returns text
  language sql volatile security definer set search_path = ''
  as $$
    select encode(extensions.pgp_sym_encrypt(plain, (select key from vault._root_key)), 'base64')
  $$;

  create or replace function vault._decrypt(cipher text) returns text
  language sql stable security definer set search_path = ''
  as $$
    select extensions.pgp_sym_decrypt(decode(cipher, 'base64'), (select key from vault._root_key))
  $$;

  create or replace function vault.create_secret(
    new_secret text,
    new_name text default null,
    new_description text default '',
    new_key_id uuid default null
  ) returns uuid
  language plpgsql security definer set search_path = ''
  as $$
  declare
    created_id uuid;
  begin
    insert into vault.secrets (secret, name, description, key_id)
    values (vault._encrypt(new_secret), new_name, coalesce(new_description, ''), new_key_id)
    returning id into created_id;
    return created_id;
  end
  $$;

  create or replace function vault.update_secret(
    secret_id uuid,
    new_secret text default null,
    new_name text default null,
    new_description text default null,
    new_key_id uuid default null
  ) returns void
  language plpgsql security definer set search_path = ''
  as $$
  begin
    update vault.secrets s
       set secret = case when new_secret is null then s.secret else vault._encrypt(new_secret) end,
           name = coalesce(new_name, s.name),
           description = coalesce(new_description, s.description),
           key_id = coalesce(new_key_id, s.key_id),
           updated_at = now()
     where s.id = secret_id;
  end
  $$;

  create or replace view vault.decrypted_secrets as
    select s.id, s.name, s.description, s.secret,
           vault._decrypt(s.secret) as decrypted_secret,
           s.key_id, s.nonce, s.created_at, s.updated_at
      from vault.secrets s;

  revoke all on all functions in schema vault from public;
  -- Reading vault.decrypted_secrets calls the decrypting function as the reader, as the real
  -- view calls vault._crypto_aead_det_decrypt.
  grant execute on function vault._decrypt(text) to service_role;
  -- Earlier versions of this stand-in let service_role write rows directly; hosted does not.
  revoke insert, update on vault.secrets from service_role;
end
$stand_in$;

-- Privileges, as hosted Supabase grants them once it has created the extension (there the
-- owner is supabase_admin and postgres gets the same grants; here postgres owns it). Nothing
-- for anon or authenticated: the extension grants nothing to PUBLIC, and this says so again.
revoke all on schema vault from public, anon, authenticated;
revoke all on all tables in schema vault from public, anon, authenticated;
revoke all on all functions in schema vault from public, anon, authenticated;
grant usage on schema vault to service_role;
grant select, delete on vault.secrets, vault.decrypted_secrets to service_role;
grant execute on function vault.create_secret(text, text, text, uuid),
                          vault.update_secret(uuid, text, text, text, uuid) to service_role;
do $vault_decrypt$
begin
  if exists (select 1 from pg_extension where extname = 'supabase_vault') then
    grant execute on function vault._crypto_aead_det_decrypt(bytea, bytea, bigint, bytea, bytea) to service_role;
  end if;
end
$vault_decrypt$;

-- Supabase's default privileges on public ------------------------------------------------
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
