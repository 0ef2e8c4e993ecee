/**
 * One definition per database object: until the first release a change to a function or
 * policy is made where the object is defined, not by redefining it in a later migration, so
 * each object reads in one place. And every function and policy says why it exists.
 */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { listMigrations } from "../../shared/db/migrate.ts";
import { MIGRATIONS_DIR } from "../../scripts/lib/local.ts";
import { collectSqlObjects, commentProblems, duplicateDefinitions, type SqlSource } from "../helpers/sql-objects.ts";

async function migrationSources(): Promise<SqlSource[]> {
  const files = await listMigrations(MIGRATIONS_DIR);
  return Promise.all(files.map(async (f) => ({ file: `${f.version}_${f.name}.sql`, sql: await readFile(f.path, "utf8") })));
}

describe("supabase/migrations", () => {
  it("defines each function, policy, table, type, view, index and trigger exactly once", async () => {
    const objects = collectSqlObjects(await migrationSources());
    // Guards against a collector that silently finds nothing.
    const kinds = new Set(objects.definitions.map((d) => d.kind));
    for (const kind of ["function", "policy", "table", "type", "index", "trigger"] as const) expect(kinds).toContain(kind);
    expect(objects.definitions.map((d) => d.key)).toContain("function:private.caller_permission(uuid)");
    expect(objects.definitions.map((d) => d.key)).toContain("table:public.deployments"); // inside a DO block
    expect(duplicateDefinitions(objects)).toEqual({});
  });

  it("comments every function and every policy exactly once, and comments nothing undefined", async () => {
    const objects = collectSqlObjects(await migrationSources());
    expect(commentProblems(objects)).toEqual({ notOnce: {}, orphans: [] });
  });
});

describe("the object collector", () => {
  const collect = (...sqls: string[]) => collectSqlObjects(sqls.map((sql, i) => ({ file: `${i + 1}.sql`, sql })));

  it("finds a function defined twice across files, whatever the spelling of its signature", () => {
    const objects = collect(
      `create or replace function private.f(p_id uuid, p_n int default 1, out level text) returns text
       language sql as $$ select 'a; create function private.f(uuid, integer)' $$;`,
      `-- create function private.g() is only a comment
       CREATE FUNCTION Private.F(uuid, integer) RETURNS text LANGUAGE plpgsql AS $body$ begin return 'b'; end $body$;`,
    );
    expect(duplicateDefinitions(objects)).toEqual({
      "function:private.f(uuid,integer)": [
        "1.sql: create or replace function private.f(p_id uuid, p_n int default 1, out level text) returns text",
        "2.sql: CREATE FUNCTION Private.F(uuid, integer) RETURNS text LANGUAGE plpgsql AS $body$ begin return 'b'; end $body$",
      ],
    });
  });

  it("tells overloads apart and ignores a function's body", () => {
    const objects = collect(
      `create function private.f(uuid) returns int language sql as $$ select 1 $$;
       create function private.f(uuid, text) returns int language plpgsql as $$
       begin create table public.t (id int); return 1; end $$;
       create table public.t (id int);`,
    );
    expect(duplicateDefinitions(objects)).toEqual({});
    expect(objects.definitions.map((d) => d.key)).toEqual([
      "function:private.f(uuid)", "function:private.f(uuid,text)", "table:public.t",
    ]);
  });

  it("counts an alter policy, and a drop then a create, as redefinitions", () => {
    const policy = `create policy "Owners read" on public.t for select to authenticated using (true);`;
    expect(Object.keys(duplicateDefinitions(collect(policy, `alter policy "Owners read" on public.t using (false);`))))
      .toEqual(['policy:public.t."Owners read"']);
    expect(Object.keys(duplicateDefinitions(collect(policy, `drop policy "Owners read" on public.t; ${policy}`))))
      .toEqual(['policy:public.t."Owners read"']);
    // Clearing a same-named policy that may exist outside the migrations defines nothing.
    expect(duplicateDefinitions(collect(`drop policy if exists "Owners read" on public.t; ${policy}`))).toEqual({});
    // The same name on another table is another policy.
    expect(duplicateDefinitions(collect(policy, policy.replace("public.t", "public.u")))).toEqual({});
  });

  it("finds tables, types, views, indexes and triggers defined twice, in DO blocks too", () => {
    const objects = collect(
      `create type public.level as enum ('a');
       create table if not exists private.k (id int);
       create index k_by_id on private.k (id);
       create view public.v as select 1;
       create trigger k_audit after insert on private.k for each row execute function private.f();
       do $create$ begin if to_regclass('private.k') is null then create table private.k (id int); end if; end $create$;`,
      `alter type public.level add value 'b';
       create unique index if not exists k_by_id on private.k (id);
       create or replace view public.v as select 2;
       create or replace trigger k_audit after insert on private.k for each row execute function private.f();
       create trigger k_audit after insert on private.other for each row execute function private.f();`,
    );
    expect(Object.keys(duplicateDefinitions(objects)).sort()).toEqual([
      "index:private.k_by_id", "table:private.k", "trigger:private.k.k_audit", "type:public.level", "view:public.v",
    ]);
  });

  it("reports a function or policy with no comment or two, and a comment on an undefined signature", () => {
    const objects = collect(`
      create function private.f(p int) returns int language sql as $$ select p $$;
      comment on function private.f(integer) is 'once';
      create function private.g(p uuid) returns uuid language sql as $$ select p $$;
      comment on function private.g(text) is 'the wrong signature';
      create policy "Owners read" on public.t for select using (true);
      comment on policy "Owners read" on public.t is 'once';
      comment on policy "Owners read" on public.t is 'twice';`);
    expect(commentProblems(objects)).toEqual({
      notOnce: { "function:private.g(uuid)": 0, 'policy:public.t."Owners read"': 2 },
      orphans: ["function:private.g(text)"],
    });
  });
});
