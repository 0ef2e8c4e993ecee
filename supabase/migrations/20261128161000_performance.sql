-- Performance, from profiling `npm run bench` (README, Benchmarks). Behaviour is unchanged:
-- every function keeps its signature, privileges and results; every policy keeps its name,
-- roles and meaning.
--
-- 1. Hot helpers become PL/pgSQL. A LANGUAGE sql function that cannot be inlined (security
--    definer, or SET search_path) is parsed and planned again in every statement that calls
--    it; PL/pgSQL keeps its plans for the session. caller_permission runs in every value
--    read, write and listing: a statement calling it took 0.29 ms, now 0.10 ms (pgbench on the
--    benchmark's machine, where `select 1` takes 0.06 ms).
--    deployment_problems' planning was most of a millisecond of each env resolution.
-- 2. Policies name the shared secrets as `= any (array(select …))` instead of
--    `in (select …)`. The array is computed once (an InitPlan) and is an indexable condition,
--    so "own or shared" becomes index scans under a BitmapOr. With `in`, the OR with a hashed
--    subplan cannot use an index: at 1,000,000 secrets every list read the whole table
--    (about 150 ms; under 1 ms now).
-- 3. Env resolution audits its bindings in one INSERT … SELECT instead of one
--    private.write_audit call per binding (each re-read and parsed the request's claims and
--    headers): with 100 bindings the statement took 5.0 ms, now 1.9 ms (with item 1). The actor
--    rules move to private.audit_actor(), which write_audit uses too, so they exist once.
-- 4. KEK rotation: the batch source keeps its plan, and what is left to re-wrap is counted
--    without counting every DEK of the active key.

-- 1. Plans kept for the session -----------------------------------------------------------

create or replace function private.caller_permission(p_secret_id uuid) returns text
language plpgsql stable security definer set search_path = ''
as $$
declare
  caller uuid := auth.uid();
  owner_id uuid;
  level text;
begin
  select s.user_id into owner_id from public.secrets s where s.id = p_secret_id;
  if not found then
    return null;
  end if;
  if auth.role() = 'service_role' or owner_id = caller then
    return 'owner';
  end if;
  select p.permission::text into level
    from public.secret_permissions p
   where p.secret_id = p_secret_id and p.user_id = caller;
  return level;
end
$$;
comment on function private.caller_permission(uuid) is
  'The caller''s level on a secret: owner (also the service role), admin, write, read, use, or null when it is not visible.';

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

create or replace function private.deployment_of_token(p_hash bytea) returns uuid
language plpgsql stable security definer set search_path = ''
as $$
begin
  return (select t.deployment_id from private.deployment_tokens t
           where t.token_hash = p_hash and t.revoked_at is null and t.expires_at > now());
end
$$;

create or replace function private.deployment_problems(p_deployment_id uuid)
returns table (env_name text, problem text, message text)
language plpgsql stable security definer set search_path = ''
as $$
#variable_conflict use_column
begin
  return query
  with d as (select * from public.deployments where id = p_deployment_id),
  b as (
    select ds.*, s.id as sid, s.user_id as owner_id, s.deleted_at, s.is_active, s.expires_at,
           (s.user_id = d.user_id or exists (
              select 1 from public.secret_permissions p
               where p.secret_id = s.id and p.user_id = d.user_id)) as usable,
           (ds.pinned_version is null or exists (
              select 1 from public.secret_versions v
               where v.secret_id = ds.secret_id and v.version = ds.pinned_version)) as version_exists
      from d join public.deployment_secrets ds on ds.deployment_id = d.id
      left join public.secrets s on s.id = ds.secret_id
  )
  select r.env_name, 'unbound'::text, r.env_name || ': required but not bound'
    from d, unnest(d.required_env) as r(env_name)
   where not exists (select 1 from b where b.env_name = r.env_name)
  union all
  select b.env_name, p.problem, b.env_name || ': ' || p.message
    from b, lateral (values
      (b.sid is null or b.deleted_at is not null, 'secret_deleted', 'the bound secret is deleted'),
      (b.sid is not null and b.deleted_at is null and not b.usable, 'permission_missing',
       'the deployment owner no longer holds at least use on the bound secret'),
      (b.sid is not null and b.deleted_at is null and b.expires_at <= now(), 'secret_expired', 'the bound secret has expired'),
      (b.sid is not null and b.deleted_at is null and not b.is_active and not coalesce(b.expires_at <= now(), false),
       'secret_inactive', 'the bound secret is inactive'),
      (b.sid is not null and not b.version_exists, 'version_missing', 'the pinned version does not exist')
    ) as p(failed, problem, message)
   where p.failed
  order by 1, 2;
end
$$;

-- 2. Policies whose "shared with me" arm can use an index ---------------------------------

alter policy "Owners and grantees see a secret's metadata; once deleted, only its owner and admins" on public.secrets
  using (user_id = (select auth.uid())
         or id = any (array(select private.shared_secret_ids('admin')))
         or (deleted_at is null and id = any (array(select private.shared_secret_ids('use')))));

alter policy "Owners and grantees with read can list a secret's versions" on public.secret_versions
  using (secret_id = any (array(select s.id from public.secrets s where s.user_id = (select auth.uid())))
         or secret_id = any (array(select private.shared_secret_ids('read'))));

alter policy "Grantees see their own grant; owners and admins see every grant of the secret" on public.secret_permissions
  using (user_id = (select auth.uid())
         or secret_id = any (array(select s.id from public.secrets s where s.user_id = (select auth.uid())))
         or secret_id = any (array(select private.shared_secret_ids('admin'))));

alter policy "Users see their own actions, and every event on secrets they own or administer" on public.secret_access_logs
  using (actor_id = (select auth.uid())
         or owner_id = (select auth.uid())
         or secret_id = any (array(select private.shared_secret_ids('admin'))));

-- 3. Audit: the actor once, env resolution in one statement -------------------------------

-- Who is acting, from the request settings the function (or PostgREST) put on the
-- transaction; no claims at all is the database itself (pg_cron): 'system'.
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
revoke all on function private.audit_actor() from public, anon, authenticated, service_role;

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

-- As 20261128160800_deployments.sql defines it, but the audit rows are one INSERT … SELECT.
create or replace function private.resolve_deployment_env(p_id uuid, p_token_hash bytea)
returns table (outcome text, env_name text, secret_id uuid, version int, enc_format smallint,
               iv bytea, ciphertext bytea, wrapped_dek bytea, kek_version int)
language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  tok private.deployment_tokens;
  d public.deployments;
  problems text;
  unreadable text;
begin
  if not ((select auth.role()) = 'service_role' and p_token_hash is null) then
    select * into tok from private.deployment_tokens t
     where t.token_hash = p_token_hash and t.revoked_at is null and t.expires_at > now();
    if tok.id is null or tok.deployment_id <> p_id then
      outcome := 'deployment_not_found'; return next; return;
    end if;
  end if;
  select * into d from public.deployments where id = p_id;
  if d.id is null then
    outcome := 'deployment_not_found'; return next; return;
  end if;
  if tok.id is not null and d.status not in ('deploying', 'running') then
    outcome := format('deployment_not_ready: the deployment is %s; its env is served while deploying or running', d.status);
    return next; return;
  end if;
  select string_agg(p.message, '; ' order by p.env_name, p.problem) into problems
    from private.deployment_problems(p_id) p;
  if problems is not null then
    outcome := 'deployment_invalid: ' || problems; return next; return;
  end if;
  if tok.created_by is not null then
    select string_agg(ds.env_name, ', ' order by ds.env_name) into unreadable
      from public.deployment_secrets ds join public.secrets s on s.id = ds.secret_id
     where ds.deployment_id = p_id
       and s.user_id <> tok.created_by
       and not exists (select 1 from public.secret_permissions p
                        where p.secret_id = s.id and p.user_id = tok.created_by and p.permission >= 'read');
    if unreadable is not null then
      outcome := 'forbidden: the token''s issuer may not read ' || unreadable
        || '; the platform''s service role delivers secrets shared with use';
      return next; return;
    end if;
  end if;

  -- One 'accessed' row per binding (with the deployment, and the token and its issuer), all
  -- in one statement.
  insert into public.secret_access_logs
    (secret_id, secret_name, owner_id, actor_id, actor_type, action, version, deployment_id,
     ip, user_agent, request_id, outcome, details)
  select ds.secret_id, s.name, s.user_id, a.actor_id, a.actor_type, 'accessed',
         coalesce(ds.resolved_version, ds.pinned_version, s.current_version), p_id,
         a.ip, a.user_agent, a.request_id, 'success',
         jsonb_strip_nulls(jsonb_build_object('envName', ds.env_name, 'tokenId', tok.id, 'tokenIssuedBy', tok.created_by))
    from public.deployment_secrets ds
    join public.secrets s on s.id = ds.secret_id
   cross join private.audit_actor() a
   where ds.deployment_id = p_id
   order by ds.env_name;

  return query
  select 'ok', ds.env_name, ds.secret_id, v.version, v.enc_format, v.iv, v.ciphertext, v.wrapped_dek, v.kek_version
    from public.deployment_secrets ds
    join public.secrets s on s.id = ds.secret_id
    join public.secret_versions v
      on v.secret_id = ds.secret_id and v.version = coalesce(ds.resolved_version, ds.pinned_version, s.current_version)
   where ds.deployment_id = p_id
   order by ds.env_name;
end
$$;

-- 4. KEK rotation -------------------------------------------------------------------------

-- The batch source, as before, with its plan kept for the session (it was planned again for
-- every batch, about 3 ms each).
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

-- What a rotation still has to re-wrap, without counting every DEK of the active key.

create or replace function private.rewrap_remaining() returns bigint
language sql stable security definer set search_path = ''
as $$
  select count(*) from public.secret_versions sv
   where sv.kek_version in (select k.version from private.key_versions k where k.status <> 'active')
$$;
comment on function private.rewrap_remaining() is
  'DEKs still wrapped by a KEK other than the active one (what a rotation has left). Owner only.';
revoke all on function private.rewrap_remaining() from public, anon, authenticated, service_role;
