-- pgTAP helpers for the database tests, in the style of basejump's supabase-test-helpers.
--
-- Run once by CI after the migrations and before pg_prove; this file is not a test (pg_prove
-- only globs supabase/tests/*.sql). It is idempotent: every statement can run again.
--
--   psql ... -v ON_ERROR_STOP=1 -q -f supabase/tests/setup/helpers.sql
--
-- Role switching. The tests act like PostgREST does on every request: `set local role
-- authenticated` and the JWT claims in `request.jwt.claims` (set_config(..., true)), so
-- everything lasts until the test's final ROLLBACK. PostgreSQL refuses SET ROLE inside a
-- security-definer function ("cannot set parameter "role" within security-definer
-- function"), so the helpers that switch roles are security invoker; switching back to
-- postgres still works from `authenticated`, because SET ROLE is checked against the session
-- user (postgres). The helpers that must read or write what `authenticated` cannot
-- (auth.users) are security definer with an empty search_path.

create extension if not exists pgtap with schema extensions;

create schema if not exists tests;
comment on schema tests is
  'pgTAP helpers: test users, PostgREST-style role and claim switching, secret fixtures. Test databases only.';

-- Users -------------------------------------------------------------------------------

create or replace function tests.create_user(p_email text)
returns uuid
language plpgsql volatile security definer set search_path = ''
as $$
declare
  created uuid;
begin
  insert into auth.users (email, aud, role, raw_app_meta_data)
  values (p_email, 'authenticated', 'authenticated',
          '{"provider": "email", "providers": ["email"]}'::jsonb)
  returning id into created;
  return created;
end
$$;
comment on function tests.create_user(text) is
  'Creates a confirmed email user in auth.users (as GoTrue would) and returns its id. '
  'Security definer: auth.users is not writable by the API roles.';

create or replace function tests.get_user_id(p_email text)
returns uuid
language plpgsql stable security definer set search_path = ''
as $$
declare
  found uuid;
begin
  select u.id into found from auth.users u where lower(u.email) = lower(p_email);
  if found is null then
    raise exception 'tests.get_user_id: no user with email %', p_email;
  end if;
  return found;
end
$$;
comment on function tests.get_user_id(text) is
  'The id of the auth.users row with this email; raises if there is none. Security definer, '
  'so it also works while a test acts as authenticated (which cannot read auth.users).';

create or replace function tests.user_claims(p_user uuid)
returns jsonb
language plpgsql stable security definer set search_path = ''
as $$
declare
  claims jsonb;
begin
  select jsonb_build_object('sub', u.id, 'email', u.email, 'role', 'authenticated',
                            'aud', 'authenticated')
    into claims
    from auth.users u where u.id = p_user;
  if claims is null then
    raise exception 'tests.user_claims: no user with id %', p_user;
  end if;
  return claims;
end
$$;
comment on function tests.user_claims(uuid) is
  'The JWT claims PostgREST would put in request.jwt.claims for this user''s access token '
  '(sub, email, role, aud). Security definer: reads auth.users.';

-- Acting as a caller ----------------------------------------------------------------------

create or replace function tests.authenticate_as(p_email text)
returns void
language plpgsql volatile
as $$
declare
  claims jsonb := tests.user_claims(tests.get_user_id(p_email));
begin
  set local role authenticated;
  perform set_config('request.jwt.claims', claims::text, true);
end
$$;
comment on function tests.authenticate_as(text) is
  'Acts as this user for the rest of the transaction, exactly as PostgREST does for a request '
  'with the user''s token: role authenticated and request.jwt.claims {sub, email, role, aud}. '
  'Security invoker (SET ROLE is refused in security-definer functions); callable from any role.';

create or replace function tests.authenticate_as_service_role()
returns void
language plpgsql volatile
as $$
begin
  set local role service_role;
  perform set_config('request.jwt.claims', '{"role": "service_role"}', true);
end
$$;
comment on function tests.authenticate_as_service_role() is
  'Acts as the service role for the rest of the transaction, as PostgREST does for the service '
  'key: role service_role (bypasses RLS) and claims {"role": "service_role"}.';

create or replace function tests.authenticate_as_anon()
returns void
language plpgsql volatile
as $$
begin
  set local role anon;
  perform set_config('request.jwt.claims', '{"role": "anon"}', true);
end
$$;
comment on function tests.authenticate_as_anon() is
  'Acts as a visitor who is not signed in, as PostgREST does for the anon key: role anon and '
  'claims {"role": "anon"} (no sub, so auth.uid() is null).';

create or replace function tests.clear_authentication()
returns void
language plpgsql volatile
as $$
begin
  set local role postgres;
  perform set_config('request.jwt.claims', '', true);
  perform set_config('request.headers', '', true);
end
$$;
comment on function tests.clear_authentication() is
  'Back to the connection owner with no request at all: role postgres, empty request.jwt.claims '
  'and request.headers. This is how pg_cron runs jobs (auth.uid() is null, audit actor "system"). '
  'Works from authenticated too: SET ROLE is checked against the session user.';

-- Fixtures ------------------------------------------------------------------------------

create or replace function tests.create_secret_as(p_owner uuid, p_name text)
returns uuid
language plpgsql volatile
as $$
declare
  saved_role text := current_user;
  saved_claims text := current_setting('request.jwt.claims', true);
  created public.secrets;
begin
  -- Act as the owner, as the function does when it writes for a signed-in user.
  set local role authenticated;
  perform set_config('request.jwt.claims', tests.user_claims(p_owner)::text, true);

  -- Valid-shaped dummy envelope: 12-byte IV, ciphertext with its 16-byte tag (>= 17 bytes),
  -- wrapped DEK = IV (12) || DEK (32) || tag (16) = 60 bytes, under KEK version 1.
  created := private.create_secret(
    extensions.gen_random_uuid(), p_owner, p_name, 'custom'::public.secret_type, null, null, null,
    extensions.gen_random_bytes(12), extensions.gen_random_bytes(33),
    extensions.gen_random_bytes(60), 1);

  -- Back to whoever called us.
  perform set_config('role', saved_role, true);
  perform set_config('request.jwt.claims', coalesce(saved_claims, ''), true);
  return created.id;
end
$$;
comment on function tests.create_secret_as(uuid, text) is
  'Creates a secret named p_name owned by p_owner through private.create_secret, acting as the '
  'owner (role authenticated, the owner''s claims), with a valid-shaped dummy ciphertext '
  '(iv 12 bytes, ciphertext 33 bytes, wrapped_dek 60 bytes, kek_version 1); then restores the '
  'caller''s role and claims and returns the new secret''s id. Writes the usual ''created'' row.';

create or replace function tests.dummy_bytes(p_length int)
returns bytea
language sql volatile
as $$
  select extensions.gen_random_bytes(p_length)
$$;
comment on function tests.dummy_bytes(int) is
  'p_length random bytes, for valid-shaped dummy iv (12), ciphertext (>= 17) and wrapped_dek (60).';

-- The API roles call these helpers after a test has switched to them.
grant usage on schema tests to anon, authenticated, service_role;
grant execute on all functions in schema tests to anon, authenticated, service_role;
