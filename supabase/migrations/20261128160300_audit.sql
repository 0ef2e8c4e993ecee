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
  created_at timestamptz not null default now()
);
comment on table public.secret_access_logs is
  'Audit trail. Append-only for every role; rows outlive their secret (no foreign key). Never holds a value.';
comment on column public.secret_access_logs.secret_id is 'The secret; kept after the secret is purged, hence no foreign key.';
comment on column public.secret_access_logs.secret_name is 'Name at the time of the event, so the trail reads after a purge.';
comment on column public.secret_access_logs.owner_id is 'Owner at the time, so owners keep seeing the trail of purged secrets.';
comment on column public.secret_access_logs.ip is 'First x-forwarded-for hop of request.headers, as PostgREST and the function set it.';
comment on column public.secret_access_logs.details is 'Structured context (changed fields, grantee, reason). Never a value.';

create index secret_access_logs_by_secret on public.secret_access_logs (secret_id, id);
create index secret_access_logs_by_actor on public.secret_access_logs (actor_id, id);
create index secret_access_logs_by_owner on public.secret_access_logs (owner_id, id);

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
  private.forbid_audit_change()
  from public, anon, authenticated, service_role;

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
