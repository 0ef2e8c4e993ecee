/**
 * The soak (`npm run soak`): its arithmetic and verdict (errors, audited against successful
 * reads, memory growth), the targets it refuses, and a short run end to end on PostgreSQL: exit
 * 0, one table row per interval with audited = read, and nothing left behind.
 */
import { describe, expect, it } from "vitest";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import {
  formatTable,
  type IntervalRow,
  intervalMs,
  intervalRow,
  parseSoakArgs,
  rssBoundMb,
  verdict,
} from "../../scripts/lib/soak-report.ts";
import { refuseTarget } from "../../scripts/lib/soak-server.ts";
import { runDeno } from "../helpers/processes.ts";
import { describeOrSkip, needsPostgres } from "../helpers/skip.ts";

const row = (over: Partial<IntervalRow> = {}): IntervalRow => ({
  index: 1, endS: 60, requests: 1000, errors: 0, p50: 2, p99: 9, rssMb: 100, readsOk: 450, audited: 450, errorKinds: {}, ...over,
});

describe("the soak's options and targets", () => {
  it("takes fractional minutes and a connection count, and defaults to 10 minutes and 32 connections", () => {
    expect(parseSoakArgs([])).toEqual({ minutes: 10, connections: 32 });
    expect(parseSoakArgs(["--minutes", "0.25"])).toEqual({ minutes: 0.25, connections: 32 });
    expect(parseSoakArgs(["--minutes=3", "--connections", "8"])).toEqual({ minutes: 3, connections: 8 });
  });

  it.each([["--minutes", "0"], ["--minutes", "-1"], ["--minutes", "abc"], ["--minutes", "100000"], ["--connections", "0"], ["--connections", "1.5"], ["--forever"]])(
    "refuses %s %s",
    (...args) => {
      expect(parseSoakArgs(args.filter((a) => a !== undefined))).toHaveProperty("error");
    },
  );

  it("cuts a run in minutes, or in three when it is shorter than three minutes", () => {
    expect(intervalMs(10)).toBe(60_000);
    expect(intervalMs(3)).toBe(60_000);
    expect(intervalMs(0.25)).toBe(5_000);
  });

  it("soaks only a PostgreSQL server on a loopback address", () => {
    expect(refuseTarget(undefined)).toMatch(/DATABASE_URL/);
    expect(refuseTarget("postgresql://postgres@db.example.com:5432/postgres")).toMatch(/loopback/);
    expect(refuseTarget("postgresql://postgres@127.0.0.1:5432,10.0.0.5:5432/postgres")).toMatch(/10\.0\.0\.5/);
    expect(refuseTarget("mysql://root@127.0.0.1/x")).toMatch(/postgresql/);
    expect(refuseTarget("postgresql://postgres@127.0.0.1:5432/postgres")).toBeNull();
    expect(refuseTarget("postgres://postgres@localhost/postgres")).toBeNull();
    expect(refuseTarget("postgresql://postgres@[::1]:5432/postgres")).toBeNull();
  });

  it("exits 2 without touching a remote server", async () => {
    const res = await runDeno("scripts/soak.ts", ["--minutes", "0.1"], { DATABASE_URL: "postgresql://postgres:pw@db.example.com:5432/postgres" });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/loopback addresses only/);
    expect(res.stderr).not.toContain(":pw@");
    expect(res.stdout).not.toMatch(/\| interval/);
  }, 60_000);
});

describe("the soak's verdict", () => {
  it("passes a run with no error, every read audited and flat memory", () => {
    expect(verdict([row(), row({ index: 2, rssMb: 120 })], { readsOk: 900, auditedAll: 900 })).toEqual([]);
  });

  it("fails a run with an error, naming the operation and status", () => {
    const problems = verdict([row(), row({ index: 2, errors: 2, errorKinds: { "put 503": 2 } })], { readsOk: 900, auditedAll: 900 });
    expect(problems.join("\n")).toMatch(/2 error\(s\): put 503 ×2/);
  });

  it("fails an interval whose successful reads are not all audited, and a run with audit rows for reads that failed", () => {
    expect(verdict([row(), row({ index: 2, audited: 449 })], { readsOk: 900, auditedAll: 899 }).join("\n"))
      .toMatch(/interval 2: 450 values read but 449 audited/);
    expect(verdict([row(), row({ index: 2 })], { readsOk: 900, auditedAll: 901 }).join("\n"))
      .toMatch(/read 900 values but its database holds 901 accessed rows/);
  });

  it("fails a server whose memory grows beyond the bound from the first interval to the last", () => {
    expect(rssBoundMb(100)).toBe(89);
    expect(verdict([row(), row({ index: 2, rssMb: 189 })], { readsOk: 900, auditedAll: 900 })).toEqual([]);
    expect(verdict([row(), row({ index: 2, rssMb: 190 })], { readsOk: 900, auditedAll: 900 }).join("\n")).toMatch(/RSS grew from 100\.0 MB to 190\.0 MB/);
    expect(verdict([row(), row({ index: 2, rssMb: null })], { readsOk: 900, auditedAll: 900 }).join("\n")).toMatch(/RSS could not be read/);
  });

  it("fails a run too short to compare memory, or with an idle interval", () => {
    expect(verdict([row()], { readsOk: 450, auditedAll: 450 }).join("\n")).toMatch(/too short/);
    expect(verdict([row(), row({ index: 2, requests: 0, readsOk: 0, audited: 0 })], { readsOk: 450, auditedAll: 450 }).join("\n"))
      .toMatch(/served no request/);
  });

  it("counts an interval's calls: errors by kind, values read only by successful reads, percentiles", () => {
    const calls = [
      ...Array.from({ length: 98 }, (_, i) => ({ op: "read", ok: true, ms: i + 1, valuesRead: 1, requestId: `r${i}` })),
      { op: "env", ok: true, ms: 99, valuesRead: 2, requestId: "e" },
      { op: "read", ok: false, ms: 500, valuesRead: 0, requestId: "x", status: 503 },
    ];
    const r = intervalRow(3, 180, calls, 150.5, 100);
    expect(r).toMatchObject({ index: 3, requests: 100, errors: 1, p50: 50, p99: 99, readsOk: 100, audited: 100, errorKinds: { "read 503": 1 } });
    expect(formatTable([r])).toMatch(/^\| 3 \| 180 s \| 100 \| 1 \| 50\.0 \| 99\.0 \| 150\.5 \| 100 \| 100 \|$/m);
  });
});

describeOrSkip("a short soak against PostgreSQL", needsPostgres, () => {
  it("serves mixed traffic with no error, audits every read, and removes its database", async () => {
    const res = await runDeno("scripts/soak.ts", ["--minutes", "0.25", "--connections", "16"], { DATABASE_URL: process.env.DATABASE_URL });
    expect(res.code, res.stderr.slice(-3000)).toBe(0);
    const rows = res.stdout.split("\n").filter((l) => /^\| \d+ \|/.test(l));
    expect(rows).toHaveLength(3);
    for (const line of rows) {
      const [, , , requests, errors, , , rss, read, audited] = line.split("|").map((c) => c.trim());
      expect(Number(requests)).toBeGreaterThan(0);
      expect(Number(errors)).toBe(0);
      expect(Number(rss)).toBeGreaterThan(0);
      expect(Number(read)).toBeGreaterThan(0);
      expect(audited).toBe(read);
    }
    expect(res.stdout).toMatch(/^soak: PASS$/m);
    const name = res.stderr.match(/creating database (sigyl_soak_[a-z0-9]+)/)?.[1];
    expect(name).toBeDefined();
    const admin = createPostgresDatabase(process.env.DATABASE_URL!, { max: 1 });
    try {
      expect(await admin.query(`select 1 from pg_database where datname = $1`, [name])).toEqual([]);
    } finally {
      await admin.close();
    }
  }, 180_000);
});
