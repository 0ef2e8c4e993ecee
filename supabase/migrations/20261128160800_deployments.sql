-- Deployments: env var bindings, the database-side validation on deploy, deployment tokens
-- and env resolution for the container builder.

-- The platform owns `deployments`; this creates it only where it is absent (local, tests),
-- with the platform's backend (service role) as its only writer, and otherwise leaves its
-- privileges alone and only adds the column it relies on. Status moves
-- pending → deploying → running | failed | stopped.
do $create$
begin
  if to_regclass('public.deployments') is null then
    create table public.deployments (
      id uuid primary key default extensions.gen_random_uuid(),
      user_id uuid not null references auth.users (id) on delete cascade,
      name text not null,
      status text not null default 'pending'
        check (status in ('pending', 'deploying', 'running', 'failed', 'stopped')),
      required_env text[] not null default '{}',
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    comment on table public.deployments is 'MCP server deployments (the platform''s table; created here only where absent).';
    revoke all on public.deployments from anon, authenticated, service_role;
    grant select on public.deployments to authenticated;
    grant select, insert, update, delete on public.deployments to service_role;
  end if;
end
$create$;
alter table public.deployments add column if not exists required_env text[] not null default '{}';
comment on column public.deployments.required_env is 'Env var names the MCP server declares it needs.';
create index if not exists deployments_by_owner on public.deployments (user_id);

alter table public.deployments enable row level security;
-- The table may be the platform's: a policy of this name it already holds gives way to ours.
drop policy if exists "Owners see their deployments" on public.deployments;
create policy "Owners see their deployments"
  on public.deployments for select to authenticated
  using (user_id = (select auth.uid()));
comment on policy "Owners see their deployments" on public.deployments is
  'A deployment reveals which secrets and env names a user relies on, so only its owner sees it; the platform writes as the service role.';

create table public.deployment_secrets (
  deployment_id uuid not null references public.deployments (id) on delete cascade,
  env_name text not null check (env_name ~ '^[A-Za-z_][A-Za-z0-9_]*$' and char_length(env_name) <= 255),
  secret_id uuid not null references public.secrets (id) on delete cascade,
  pinned_version int check (pinned_version > 0),
  resolved_version int,
  created_by uuid,
  created_at timestamptz not null default now(),
  primary key (deployment_id, env_name)
);
comment on table public.deployment_secrets is 'Env var → secret bindings of a deployment.';
comment on column public.deployment_secrets.pinned_version is 'A version chosen by the owner; null follows the current version.';
comment on column public.deployment_secrets.resolved_version is 'The version the deployment gets, fixed by the deploy trigger.';
create index deployment_secrets_by_secret on public.deployment_secrets (secret_id);

revoke all on public.deployment_secrets from anon, authenticated, service_role;
grant select on public.deployment_secrets to authenticated, service_role;
alter table public.deployment_secrets enable row level security;
create policy "Deployment owners see the bindings of their deployments"
  on public.deployment_secrets for select to authenticated
  using (deployment_id in (select d.id from public.deployments d where d.user_id = (select auth.uid())));
comment on policy "Deployment owners see the bindings of their deployments" on public.deployment_secrets is
  'Bindings follow their deployment: only its owner lists them, even for secrets shared with use only; a secret''s owner learns of them from the bound / unbound audit rows.';

-- Tokens: opaque random strings, stored only as SHA-256; never exposed over REST.
create table private.deployment_tokens (
  id uuid primary key default extensions.gen_random_uuid(),
  deployment_id uuid not null references public.deployments (id) on delete cascade,
  token_hash bytea not null unique check (octet_length(token_hash) = 32),
  created_by uuid,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  revoked_at timestamptz
);
comment on column private.deployment_tokens.created_by is 'The user who issued it; null for the service role (the platform).';
comment on table private.deployment_tokens is
  'Short-lived tokens that open GET /deployments/:id/env for one deployment. Only the hash is kept.';
create index deployment_tokens_by_deployment on private.deployment_tokens (deployment_id);
revoke all on private.deployment_tokens from public, anon, authenticated, service_role;

-- Audit of bindings ----------------------------------------------------------------------

create or replace function private.audit_binding_change() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  s public.secrets;
  changed boolean := tg_op = 'UPDATE'
    and (new.secret_id is distinct from old.secret_id or new.pinned_version is distinct from old.pinned_version);
begin
  -- Each row names its own secret: on a rebinding, the old one is unbound, the new one bound.
  -- Bindings removed by a purge of their secret are covered by its 'purged' row.
  if tg_op = 'DELETE' or changed then
    select * into s from public.secrets where id = old.secret_id;
    if s.id is not null then
      perform private.write_audit(old.secret_id, s.name, s.user_id, 'unbound', old.pinned_version,
        jsonb_build_object('envName', old.env_name), 'success', old.deployment_id);
    end if;
  end if;
  if tg_op = 'INSERT' or changed then
    select * into s from public.secrets where id = new.secret_id;
    perform private.write_audit(new.secret_id, s.name, s.user_id, 'bound', new.pinned_version,
      jsonb_build_object('envName', new.env_name), 'success', new.deployment_id);
  end if;
  return null;
end
$$;
comment on function private.audit_binding_change() is
  'Trigger: binding, rebinding and unbinding are audited as bound / unbound on the secret, with the deployment, so an owner sees where a secret goes.';
create trigger deployment_secrets_audit after insert or update or delete on public.deployment_secrets
  for each row execute function private.audit_binding_change();

-- What would stop a deployment ------------------------------------------------------------

-- Every problem, one row each: a required env var without binding, a bound secret deleted,
-- inactive or expired, a pinned version that does not exist, an owner who no longer
-- holds at least `use` on the secret, or a pinned version the owner may no longer choose
-- (it holds less than `read`: bound with read, then downgraded to use). PL/pgSQL so its
-- plan is kept for the session: env resolution calls it on every request, and planning it
-- again each time was a large part of the request's SQL.
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
               where v.secret_id = ds.secret_id and v.version = ds.pinned_version)) as version_exists,
           (ds.pinned_version is null or s.user_id = d.user_id or exists (
              select 1 from public.secret_permissions p
               where p.secret_id = s.id and p.user_id = d.user_id and p.permission >= 'read')) as may_pin
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
      (b.sid is not null and not b.version_exists, 'version_missing', 'the pinned version does not exist'),
      (b.sid is not null and b.deleted_at is null and b.usable and not b.may_pin, 'pin_requires_read',
       'the deployment owner holds only use on the bound secret, so the binding cannot pin a version; bind it without one')
    ) as p(failed, problem, message)
   where p.failed
  order by 1, 2;
end
$$;
comment on function private.deployment_problems(uuid) is
  'Every reason a deployment cannot deploy, one row each; the deploy trigger, the API''s report and env resolution share it so they never disagree. Owner only.';

-- The database itself validates a deployment when it starts being served, whoever moves it
-- (the API or the platform in plain SQL), and refuses with one message naming every
-- problem. On success it fixes the versions the deployment will get. It fires on a move into
-- deploying from any other status (a redeploy from running included), on a move into running
-- from a status that is neither (pending, failed or stopped straight to running), and on an
-- INSERT with either status. deploying → running does not fire: the rollout runs with the
-- versions pinned and checked at deploying, and env resolution still refuses a deployment
-- with problems on every read. An AFTER trigger, so the row it checks is the new one;
-- raising still undoes the statement.
create or replace function private.validate_deployment() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  problems text;
begin
  select string_agg(p.message, '; ' order by p.env_name, p.problem) into problems
    from private.deployment_problems(new.id) p;
  if problems is not null then
    raise exception 'deployment_invalid: deployment % cannot deploy: %', new.id, problems
      using errcode = 'S0409';
  end if;
  update public.deployment_secrets ds
     set resolved_version = coalesce(ds.pinned_version, s.current_version)
    from public.secrets s
   where s.id = ds.secret_id and ds.deployment_id = new.id;
  return null;
end
$$;
comment on function private.validate_deployment() is
  'Trigger: a deployment entering deploying, or running other than from deploying (or inserted as either), is checked by the database, whoever moves it, and its versions are fixed; any problem refuses the change. deploying → running keeps the versions pinned at deploying.';
create trigger deployments_validate_on_deploy
  after update of status on public.deployments
  for each row when (
    (new.status = 'deploying' and old.status is distinct from 'deploying')
    or (new.status = 'running' and old.status not in ('deploying', 'running')))
  execute function private.validate_deployment();
create trigger deployments_validate_on_insert
  after insert on public.deployments
  for each row when (new.status in ('deploying', 'running'))
  execute function private.validate_deployment();

-- Helpers the function calls ---------------------------------------------------------------

-- The problems of a deployment the caller owns (404 otherwise), for the API's reports.
create or replace function private.deployment_report(p_id uuid)
returns table (env_name text, problem text, message text)
language plpgsql security definer set search_path = ''
as $$
begin
  perform private.require_api_session();
  perform private.deployment_for(p_id);
  return query select * from private.deployment_problems(p_id);
end
$$;
comment on function private.deployment_report(uuid) is
  'The problems of a deployment the caller owns (or any, for the service role), for the API''s validation reports.';

-- The deployment if the caller owns it (or is the service role); 404 otherwise.
create or replace function private.deployment_for(p_id uuid) returns public.deployments
language plpgsql security definer set search_path = ''
as $$
declare
  d public.deployments;
begin
  perform private.require_api_session();
  select * into d from public.deployments where id = p_id;
  if d.id is null or ((select auth.role()) <> 'service_role' and d.user_id is distinct from (select auth.uid())) then
    raise exception 'deployment_not_found' using errcode = 'S0404';
  end if;
  return d;
end
$$;
comment on function private.deployment_for(uuid) is
  'The deployment if the caller owns it or is the service role; deployment_not_found otherwise, so others cannot learn it exists.';

-- The deployments the caller owns (the service role: every one, or one owner's with p_owner),
-- by name then id, a page at a time after the deployment p_after (which the caller must see:
-- invalid_cursor otherwise); each with its number of bindings and the required env names no
-- binding covers, once each. The cursor is an id rather than a name, as the platform sets no
-- length on names; `coalesce(name::text, '')` sorts and compares alike whatever the platform's
-- column is (text, citext, nullable). A definer function, as deployment_for is, so that it
-- does not depend on the grants of a table the platform owns.
create or replace function private.list_deployments(p_owner uuid, p_status text, p_after uuid, p_limit integer)
returns table (id uuid, user_id uuid, name text, status text, required_env text[], binding_count integer, unbound_env text[])
language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  everyone boolean := (select auth.role()) = 'service_role';
  me uuid := (select auth.uid());
  after_name text;
begin
  perform private.require_api_session();
  if p_after is not null then
    select coalesce(a.name::text, '') into after_name
      from public.deployments a where a.id = p_after and (everyone or a.user_id = me);
    if not found then raise exception 'invalid_cursor' using errcode = 'S0400'; end if;
  end if;
  return query
    select d.id, d.user_id, coalesce(d.name::text, ''), d.status::text, d.required_env,
           (select count(*)::integer from public.deployment_secrets ds where ds.deployment_id = d.id),
           array(select distinct e from unnest(d.required_env) e
                  where not exists (select 1 from public.deployment_secrets ds
                                     where ds.deployment_id = d.id and ds.env_name = e)
                  order by e)
      from public.deployments d
     where (everyone or d.user_id = me)
       and (p_owner is null or d.user_id = p_owner)
       and (p_status is null or d.status::text = p_status)
       and (p_after is null or (coalesce(d.name::text, ''), d.id) > (after_name, p_after))
     order by coalesce(d.name::text, ''), d.id
     limit p_limit;
end
$$;
comment on function private.list_deployments(uuid, text, uuid, integer) is
  'The caller''s deployments (all, or one owner''s, for the service role), by name, a page at a time after a deployment it sees, with their binding counts and unbound required env names.';

-- Replaces the bindings (a JSON array of {envName, secretId, version}). Each secret must be
-- usable by the deployment owner (owner, or any grant): otherwise it is reported as not found.
-- Only an owner who may read a secret (owner, or read and up) may pin one of its versions:
-- below read a binding follows the current version, fixed when the deployment deploys. A
-- `use` grantee controls the code that receives the value, so a pin would let it deploy a
-- version the secret's owner replaced (a leaked key rotated away, say).
create or replace function private.replace_bindings(p_id uuid, p_bindings jsonb)
returns setof public.deployment_secrets
language plpgsql security definer set search_path = ''
as $$
declare
  d public.deployments := private.deployment_for(p_id);
  missing text;
  pinned text;
begin
  perform private.require_api_session();
  -- Locked, then checked: a rollout in progress keeps the versions its trigger pinned.
  select * into d from public.deployments where id = p_id for update;
  if d.status = 'deploying' then
    raise exception 'deployment_in_progress: bindings cannot change while the deployment is deploying'
      using errcode = 'S0409';
  end if;
  select string_agg(b.env_name, ', ' order by b.env_name) into missing
    from jsonb_to_recordset(p_bindings) as b(env_name text, secret_id uuid, version int)
   where not exists (
     select 1 from public.secrets s
      where s.id = b.secret_id and s.deleted_at is null
        and (s.user_id = d.user_id or exists (
          select 1 from public.secret_permissions p where p.secret_id = s.id and p.user_id = d.user_id)));
  if missing is not null then
    raise exception 'secret_not_found: no usable secret for %', missing using errcode = 'S0404';
  end if;
  select string_agg(b.env_name, ', ' order by b.env_name) into pinned
    from jsonb_to_recordset(p_bindings) as b(env_name text, secret_id uuid, version int)
    join public.secrets s on s.id = b.secret_id
   where b.version is not null and s.user_id <> d.user_id
     and not exists (select 1 from public.secret_permissions p
                      where p.secret_id = s.id and p.user_id = d.user_id and p.permission >= 'read');
  if pinned is not null then
    raise exception 'pin_requires_read: the deployment owner holds only use on the secret bound to %; bind it without a version, to follow the current one', pinned
      using errcode = 'S0403';
  end if;

  delete from public.deployment_secrets ds
   where ds.deployment_id = p_id
     and not exists (select 1 from jsonb_to_recordset(p_bindings) as b(env_name text)
                      where b.env_name = ds.env_name);
  insert into public.deployment_secrets as ds (deployment_id, env_name, secret_id, pinned_version, created_by)
  select p_id, b.env_name, b.secret_id, b.version, (select auth.uid())
    from jsonb_to_recordset(p_bindings) as b(env_name text, secret_id uuid, version int)
  on conflict (deployment_id, env_name) do update
    set secret_id = excluded.secret_id, pinned_version = excluded.pinned_version,
        resolved_version = null, created_by = excluded.created_by, created_at = now()
    where ds.secret_id is distinct from excluded.secret_id or ds.pinned_version is distinct from excluded.pinned_version;
  return query select * from public.deployment_secrets where deployment_id = p_id order by env_name;
end
$$;
comment on function private.replace_bindings(uuid, jsonb) is
  'Replaces a deployment''s bindings; a secret its owner cannot use is reported as not found, a pinned version needs read (pin_requires_read), and nothing changes while it is deploying.';

create or replace function private.create_deployment_token(p_id uuid, p_hash bytea, p_expires_at timestamptz)
returns private.deployment_tokens
language plpgsql security definer set search_path = ''
as $$
declare
  t private.deployment_tokens;
  d public.deployments;
begin
  perform private.require_api_session();
  d := private.deployment_for(p_id);
  -- The function asks for 60 s to a day; the database holds that line too, so no login,
  -- the function's included, can mint a long-lived key to a deployment's env.
  if p_expires_at is null or p_expires_at <= now() or p_expires_at > now() + interval '1 day 1 minute' then
    raise exception 'invalid_request: a deployment token lives at most one day' using errcode = 'S0400';
  end if;
  insert into private.deployment_tokens (deployment_id, token_hash, created_by, expires_at)
  values (p_id, p_hash, (select auth.uid()), p_expires_at)
  returning * into t;
  perform private.write_audit(null, null, d.user_id, 'token_issued', null,
    jsonb_build_object('tokenId', t.id, 'expiresAt', t.expires_at), 'success', p_id);
  return t;
end
$$;
comment on function private.create_deployment_token(uuid, bytea, timestamptz) is
  'Stores a new deployment token''s hash (the token itself never reaches the database) and audits its issue.';

create or replace function private.list_deployment_tokens(p_id uuid)
returns table (id uuid, created_by uuid, created_at timestamptz, expires_at timestamptz, revoked_at timestamptz)
language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
begin
  perform private.require_api_session();
  perform private.deployment_for(p_id);
  return query select t.id, t.created_by, t.created_at, t.expires_at, t.revoked_at
                 from private.deployment_tokens t where t.deployment_id = p_id order by t.created_at desc;
end
$$;
comment on function private.list_deployment_tokens(uuid) is
  'A deployment''s tokens for its owner or the service role: ids and times only, as the hash is what looks a token up.';

create or replace function private.revoke_deployment_token(p_id uuid, p_token_id uuid) returns void
language plpgsql security definer set search_path = ''
as $$
declare
  d public.deployments := private.deployment_for(p_id);
begin
  perform private.require_api_session();
  update private.deployment_tokens set revoked_at = coalesce(revoked_at, now())
   where id = p_token_id and deployment_id = p_id;
  if not found then raise exception 'token_not_found' using errcode = 'S0404'; end if;
  perform private.write_audit(null, null, d.user_id, 'token_revoked', null,
    jsonb_build_object('tokenId', p_token_id), 'success', p_id);
end
$$;
comment on function private.revoke_deployment_token(uuid, uuid) is
  'Revokes a deployment token (idempotent: the first revocation time stays) and audits it.';

-- The deployment a live token opens, or nothing. Called by the connection owner while
-- authenticating, before any caller context exists. PL/pgSQL for its session-long plan.
create or replace function private.deployment_of_token(p_hash bytea) returns uuid
language plpgsql stable security definer set search_path = ''
as $$
begin
  return (select t.deployment_id from private.deployment_tokens t
           where t.token_hash = p_hash and t.revoked_at is null and t.expires_at > now());
end
$$;
comment on function private.deployment_of_token(bytea) is
  'The deployment a live (unexpired, unrevoked) token opens, or null; by hash only, so the database never holds a usable token. Owner only.';

-- Env resolution in one statement: checks the caller (a live token of this deployment, or
-- the service role), refuses a deployment with problems, writes one 'accessed' row per
-- binding with the deployment id (and the token and its issuer), and returns every sealed
-- value. A token serves only a deployment that is deploying or running. A token a user
-- issued serves only secrets that user may read: `use` lets a teammate bind a secret, and
-- the platform (service role) delivers it, but the teammate's own token never does. The audit
-- rows are one INSERT … SELECT with the actor from private.audit_actor(), not a write_audit
-- call per binding (each of which read and parsed the request's claims and headers again).
-- Every row carries the env's fingerprint: a SHA-256 of each binding's env name, secret and
-- served version, the answer's ETag. When `p_if_none_match` holds it (or `*`), the env is
-- unchanged since the caller last fetched it: one 'not_modified' row, and no value is read
-- and nothing audited (the checks above it still run, so a revoked token or a deployment
-- that became invalid is refused as before). No binding at all: one 'ok' row without a name.
create or replace function private.resolve_deployment_env(p_id uuid, p_token_hash bytea, p_if_none_match text[] default null)
returns table (outcome text, env_name text, secret_id uuid, version int, enc_format smallint,
               iv bytea, ciphertext bytea, wrapped_dek bytea, kek_version int, fingerprint text)
language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  tok private.deployment_tokens;
  d public.deployments;
  problems text;
  unreadable text;
  fp text;
begin
  perform private.require_api_session();
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

  select left(encode(sha256(convert_to(coalesce(string_agg(
           format('%s=%s@%s', ds.env_name, ds.secret_id, coalesce(ds.resolved_version, ds.pinned_version, s.current_version)),
           E'\n' order by ds.env_name), ''), 'UTF8')), 'hex'), 32)
    into fp
    from public.deployment_secrets ds join public.secrets s on s.id = ds.secret_id
   where ds.deployment_id = p_id;
  if fp = any(p_if_none_match) or '*' = any(p_if_none_match) then
    outcome := 'not_modified'; fingerprint := fp; return next; return;
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
  select 'ok', ds.env_name, ds.secret_id, v.version, v.enc_format, v.iv, v.ciphertext, v.wrapped_dek, v.kek_version, fp
    from public.deployment_secrets ds
    join public.secrets s on s.id = ds.secret_id
    join public.secret_versions v
      on v.secret_id = ds.secret_id and v.version = coalesce(ds.resolved_version, ds.pinned_version, s.current_version)
   where ds.deployment_id = p_id
   order by ds.env_name;
  if not found then
    outcome := 'ok'; fingerprint := fp; return next;
  end if;
end
$$;
comment on function private.resolve_deployment_env(uuid, bytea, text[]) is
  'The sealed env of a deployment for a live token of it or the service role, with one accessed row per binding in the same transaction, and its fingerprint (not_modified, reading and auditing nothing, when the caller holds it); refusals are outcomes, not errors.';

revoke all on function
  private.audit_binding_change(), private.validate_deployment(), private.deployment_problems(uuid),
  private.deployment_for(uuid), private.deployment_report(uuid), private.replace_bindings(uuid, jsonb),
  private.create_deployment_token(uuid, bytea, timestamptz), private.list_deployment_tokens(uuid),
  private.revoke_deployment_token(uuid, uuid), private.deployment_of_token(bytea),
  private.resolve_deployment_env(uuid, bytea, text[]), private.list_deployments(uuid, text, uuid, integer)
  from public, anon, authenticated, service_role;
-- Each of these checks the caller itself: deployment owner or service role (or, for the env,
-- a live token of that deployment).
grant execute on function
  private.deployment_for(uuid), private.deployment_report(uuid), private.replace_bindings(uuid, jsonb),
  private.create_deployment_token(uuid, bytea, timestamptz), private.list_deployment_tokens(uuid),
  private.revoke_deployment_token(uuid, uuid), private.resolve_deployment_env(uuid, bytea, text[]),
  private.list_deployments(uuid, text, uuid, integer)
  to authenticated, service_role;
-- The function looks a token up as its own login (sigyl_api), before any caller exists.
grant execute on function private.deployment_of_token(bytea) to sigyl_api;
