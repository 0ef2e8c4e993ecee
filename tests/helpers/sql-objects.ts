/**
 * Which database objects a set of migration files defines, and where: enough of PostgreSQL's
 * DDL to hold the migrations to one definition per object. Not a SQL parser: it reads the
 * head of each top-level statement (and of each statement inside a DO block), which is where
 * DDL names its object.
 */
import { splitStatements } from "../../shared/db/migrate.ts";

export interface SqlSource {
  file: string;
  sql: string;
}

/** One statement that defines (creates, replaces, alters or drops) an object, or comments on one. */
export interface SqlObjectStatement {
  /** `function:private.f(uuid,integer)`, `policy:public.t."name"`, `table:public.t`, … */
  key: string;
  kind: "function" | "policy" | "table" | "type" | "view" | "index" | "trigger" | "schema";
  file: string;
  /** The statement's first line, to point at it in a failure. */
  statement: string;
}

export interface SqlObjects {
  definitions: SqlObjectStatement[];
  comments: SqlObjectStatement[];
}

/** Removes `--` and `/* *\/` comments outside quotes and dollar quotes. */
export function stripComments(sql: string): string {
  let out = "";
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (c === "-" && sql[i + 1] === "-") {
      const end = sql.indexOf("\n", i);
      i = end < 0 ? sql.length : end;
    } else if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      i = end < 0 ? sql.length : end + 2;
      out += " ";
    } else if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < sql.length && !(sql[j] === c && sql[j + 1] !== c)) j += sql[j] === c ? 2 : 1;
      out += sql.slice(i, j + 1);
      i = j + 1;
    } else if (c === "$") {
      const tag = sql.slice(i).match(/^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/)?.[0];
      const end = tag ? sql.indexOf(tag, i + tag.length) : -1;
      const stop = !tag ? i + 1 : end < 0 ? sql.length : end + tag.length;
      out += sql.slice(i, stop);
      i = stop;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const IDENT = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`;
const NAME = String.raw`(${IDENT}(?:\s*\.\s*${IDENT})?)`;

function ident(raw: string): string {
  return raw.startsWith('"') ? raw.slice(1, -1).replace(/""/g, '"') : raw.toLowerCase();
}

/** `Private."Odd"` → `private.Odd`; an unqualified name is in `defaultSchema`. */
function qualified(raw: string, defaultSchema = "public"): string {
  const parts = raw.match(new RegExp(IDENT, "g"))!.map(ident);
  return (parts.length === 1 ? [defaultSchema, ...parts] : parts).join(".");
}

/** Splits at commas outside parentheses and quotes. */
function splitTopLevel(list: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < list.length && !(list[j] === c && list[j + 1] !== c)) j += list[j] === c ? 2 : 1;
      i = j;
    } else if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "," && depth === 0) {
      parts.push(list.slice(start, i));
      start = i + 1;
    }
  }
  if (list.slice(start).trim()) parts.push(list.slice(start));
  return parts;
}

/** The text inside the parenthesis that opens at `open`, and the index after its close. */
function balanced(text: string, open: number): { inner: string; end: number } {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < text.length && !(text[j] === c && text[j + 1] !== c)) j += text[j] === c ? 2 : 1;
      i = j;
    } else if (c === "(") depth++;
    else if (c === ")" && --depth === 0) return { inner: text.slice(open + 1, i), end: i + 1 };
  }
  return { inner: text.slice(open + 1), end: text.length };
}

const TYPE_ALIASES: Record<string, string> = {
  int: "integer", int4: "integer", int8: "bigint", int2: "smallint", bool: "boolean",
  timestamptz: "timestamp with time zone", timestamp: "timestamp without time zone",
  timetz: "time with time zone", varchar: "character varying", char: "character",
  float8: "double precision", float4: "real", decimal: "numeric",
};
const MULTI_WORD_TYPES = /^(double\s+precision|character\s+varying|bit\s+varying|timestamp\s+with(out)?\s+time\s+zone|time\s+with(out)?\s+time\s+zone)\b/i;

/** One argument of a signature reduced to its type, or null for an OUT argument (not part of the identity). */
function argumentType(arg: string): string | null {
  let text = arg.trim().replace(/\s+(default\b|=)[\s\S]*$/i, "").trim();
  const mode = text.match(/^(in|out|inout|variadic)\s+/i);
  if (mode) {
    if (mode[1].toLowerCase() === "out") return null;
    text = text.slice(mode[0].length);
  }
  if (!MULTI_WORD_TYPES.test(text) && /^\S+\s+\S/.test(text)) text = text.replace(/^\S+\s+/, ""); // a name
  const array = (text.match(/\[\s*\d*\s*\]/g) ?? []).length;
  const base = text.replace(/\[\s*\d*\s*\]/g, "").replace(/\([^)]*\)/g, "").trim().replace(/\s+/g, " ");
  const name = base.includes(".") ? qualified(base) : ident(base.includes('"') ? base : base.toLowerCase());
  return (TYPE_ALIASES[name] ?? name) + "[]".repeat(array);
}

function signature(args: string): string {
  return splitTopLevel(args).map(argumentType).filter((t) => t !== null).join(",");
}

interface Found {
  key: string;
  kind: SqlObjectStatement["kind"];
  verb: "create" | "alter" | "drop" | "comment";
}

const ROUTINE = new RegExp(String.raw`^(create(?:\s+or\s+replace)?|alter|drop|comment\s+on)\s+(?:function|procedure|routine)\s+(?:if\s+exists\s+)?${NAME}\s*\(`, "i");
const POLICY = new RegExp(String.raw`^(create|alter|drop|comment\s+on)\s+policy\s+(?:if\s+exists\s+)?(${IDENT})\s+on\s+${NAME}`, "i");
const TABLE = new RegExp(String.raw`^(create|drop)\s+(?:(?:global\s+|local\s+)?(?:temp|temporary|unlogged)\s+)?table\s+(?:if\s+(?:not\s+)?exists\s+)?${NAME}`, "i");
const TYPE = new RegExp(String.raw`^(create|alter|drop)\s+type\s+(?:if\s+exists\s+)?${NAME}`, "i");
const VIEW = new RegExp(String.raw`^(create(?:\s+or\s+replace)?(?:\s+temp(?:orary)?)?(?:\s+recursive)?|alter|drop)\s+(?:materialized\s+)?view\s+(?:if\s+(?:not\s+)?exists\s+)?${NAME}`, "i");
const INDEX = new RegExp(String.raw`^create\s+(?:unique\s+)?index\s+(?:concurrently\s+)?(?:if\s+not\s+exists\s+)?(${IDENT})\s+on\s+(?:only\s+)?${NAME}`, "i");
const INDEX_CHANGE = new RegExp(String.raw`^(alter|drop)\s+index\s+(?:concurrently\s+)?(?:if\s+exists\s+)?${NAME}`, "i");
const TRIGGER = new RegExp(String.raw`^(create(?:\s+or\s+replace)?(?:\s+constraint)?|alter|drop)\s+trigger\s+(?:if\s+exists\s+)?(${IDENT})\s+[\s\S]*?\bon\s+${NAME}`, "i");
const SCHEMA = new RegExp(String.raw`^(create|alter|drop)\s+schema\s+(?:if\s+(?:not\s+)?exists\s+)?(${IDENT})`, "i");

function verbOf(raw: string): Found["verb"] {
  const v = raw.toLowerCase();
  return v.startsWith("comment") ? "comment" : v.startsWith("alter") ? "alter" : v.startsWith("drop") ? "drop" : "create";
}

/** The objects one statement (comments stripped, trimmed) defines or comments on. */
function objectsOf(stmt: string): Found[] {
  let m: RegExpMatchArray | null;
  if ((m = stmt.match(ROUTINE))) {
    const found: Found[] = [];
    const verb = verbOf(m[1]);
    let { inner, end } = balanced(stmt, m[0].length - 1);
    found.push({ key: `function:${qualified(m[2])}(${signature(inner)})`, kind: "function", verb });
    // `drop function a(…), b(…)` names several.
    while (verb === "drop") {
      const next = stmt.slice(end).match(new RegExp(String.raw`^\s*,\s*${NAME}\s*\(`));
      if (!next) break;
      ({ inner, end } = balanced(stmt, end + next[0].length - 1));
      found.push({ key: `function:${qualified(next[1])}(${signature(inner)})`, kind: "function", verb });
    }
    return found;
  }
  if ((m = stmt.match(POLICY))) {
    return [{ key: `policy:${qualified(m[3])}."${ident(m[2])}"`, kind: "policy", verb: verbOf(m[1]) }];
  }
  if ((m = stmt.match(TABLE))) return [{ key: `table:${qualified(m[2])}`, kind: "table", verb: verbOf(m[1]) }];
  if ((m = stmt.match(TYPE))) return [{ key: `type:${qualified(m[2])}`, kind: "type", verb: verbOf(m[1]) }];
  if ((m = stmt.match(VIEW))) return [{ key: `view:${qualified(m[2])}`, kind: "view", verb: verbOf(m[1]) }];
  if ((m = stmt.match(INDEX))) {
    const schema = qualified(m[2]).split(".")[0]; // an index lives in its table's schema
    return [{ key: `index:${schema}.${ident(m[1])}`, kind: "index", verb: "create" }];
  }
  if ((m = stmt.match(INDEX_CHANGE))) return [{ key: `index:${qualified(m[2])}`, kind: "index", verb: verbOf(m[1]) }];
  if ((m = stmt.match(TRIGGER))) {
    return [{ key: `trigger:${qualified(m[3])}.${ident(m[2])}`, kind: "trigger", verb: verbOf(m[1]) }];
  }
  if ((m = stmt.match(SCHEMA))) return [{ key: `schema:${ident(m[2])}`, kind: "schema", verb: verbOf(m[1]) }];
  return [];
}

/** The statements of a DO block's body, from its first DDL keyword on (string literals blanked). */
function doBlockStatements(stmt: string): string[] {
  const body = stmt.match(/^do\s+(?:language\s+\w+\s+)?(\$[A-Za-z0-9_]*\$)([\s\S]*)\1/i)?.[2];
  if (body === undefined) return [];
  return splitStatements(body)
    .map((s) => stripComments(s).replace(/'(?:[^']|'')*'/g, "''"))
    .map((s) => s.slice(s.search(/\b(create|alter|drop|comment\s+on)\s/i)).trim())
    .filter((s) => /^(create|alter|drop|comment)\s/i.test(s));
}

/**
 * Every definition and comment in the sources, in order. Creating, replacing or altering an
 * object counts as defining it; so does dropping one defined earlier (a drop then a create is
 * two definitions). A `drop … if exists` of an object no earlier statement defined clears
 * what may be there from outside the migrations and is not counted.
 */
export function collectSqlObjects(sources: SqlSource[]): SqlObjects {
  const definitions: SqlObjectStatement[] = [];
  const comments: SqlObjectStatement[] = [];
  for (const { file, sql } of sources) {
    for (const raw of splitStatements(sql)) {
      const stmt = stripComments(raw).trim();
      const statements = /^do\s/i.test(stmt) ? doBlockStatements(stmt) : [stmt];
      for (const s of statements) {
        for (const found of objectsOf(s)) {
          const entry = { key: found.key, kind: found.kind, file, statement: s.split("\n")[0] };
          if (found.verb === "comment") comments.push(entry);
          else if (found.verb !== "drop" || definitions.some((d) => d.key === found.key)) definitions.push(entry);
        }
      }
    }
  }
  return { definitions, comments };
}

/** Keys defined by more than one statement, with where each one is. */
export function duplicateDefinitions(objects: SqlObjects): Record<string, string[]> {
  const byKey = new Map<string, SqlObjectStatement[]>();
  for (const d of objects.definitions) byKey.set(d.key, [...(byKey.get(d.key) ?? []), d]);
  return Object.fromEntries(
    [...byKey].filter(([, ds]) => ds.length > 1).map(([key, ds]) => [key, ds.map((d) => `${d.file}: ${d.statement}`)]),
  );
}

/**
 * Functions and policies without exactly one comment (key → number of comments), and
 * comments on nothing the sources define (a misspelt signature, say).
 */
export function commentProblems(objects: SqlObjects): { notOnce: Record<string, number>; orphans: string[] } {
  const count = (key: string) => objects.comments.filter((c) => c.key === key).length;
  const documented = new Set(objects.definitions.filter((d) => d.kind === "function" || d.kind === "policy").map((d) => d.key));
  const notOnce = Object.fromEntries([...documented].map((k) => [k, count(k)] as const).filter(([, n]) => n !== 1));
  const defined = new Set(objects.definitions.map((d) => d.key));
  const orphans = [...new Set(objects.comments.map((c) => c.key))].filter((k) => !defined.has(k));
  return { notOnce, orphans };
}
