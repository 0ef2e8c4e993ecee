/**
 * No KEK in the WAL. The real Supabase Vault's create_secret inserts the value it is given and
 * encrypts it by a later UPDATE, so whatever it is handed reaches a row image, and so the WAL
 * (replicas, PITR archives). The migrations and the rotation must create KEKs so that the key
 * never does: these tests read the WAL segment files the server wrote while the migrations
 * ran and while a rotation ran, and look for the key in every encoding.
 *
 * Runs on PostgreSQL with the real extension (scripts/setup-postgres.sh), from a process that
 * can read the server's pg_wal (CI runs as root on the database machine).
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { migrateLocal } from "../../scripts/lib/local.ts";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import { createScratchDatabase, realVaultReason, type ScratchDatabase } from "../helpers/real-vault.ts";
import { describeOrSkip } from "../helpers/skip.ts";
import { currentLsn, keyEncodings, keyTraces, walBetween, walHolds, walUnreadableReason } from "../helpers/wal.ts";

async function skipReason(): Promise<string | null> {
  const vault = await realVaultReason();
  if (vault) return vault;
  const db = createPostgresDatabase(process.env.DATABASE_URL!, { max: 1 });
  try {
    return await walUnreadableReason(db);
  } finally {
    await db.close();
  }
}

describeOrSkip("KEKs never reach the WAL in plaintext (real Supabase Vault)", await skipReason(), () => {
  let scratch: ScratchDatabase;
  let slot: string;
  /** The WAL the stand-in and the migrations wrote, and the key they made. */
  let migration: { from: string; to: string; key: string };

  beforeAll(async () => {
    // Uncompressed full-page images, so a page holding the key would show it.
    scratch = await createScratchDatabase({ wal_compression: "off" });
    // A physical slot holds the WAL from here on, so no checkpoint recycles a segment before
    // it is read.
    slot = scratch.name;
    await scratch.db.query(`select pg_create_physical_replication_slot($1, true)`, [slot]);
    const from = await currentLsn(scratch.db);
    await migrateLocal(scratch.db);
    const to = await currentLsn(scratch.db);
    const [kek] = await scratch.db.query<{ material: string }>(`select material from private.load_keyring() where version = 1`);
    migration = { from, to, key: kek.material };
  }, 180_000);

  afterAll(async () => {
    if (!scratch) return;
    await scratch.db.query(`select pg_drop_replication_slot($1)`, [slot]).catch(() => {});
    await scratch.drop();
  });

  it("runs on the real extension, which the platform stand-in installed", async () => {
    const [ext] = await scratch.db.query<{ version: string }>(
      `select extversion as version from pg_extension where extname = 'supabase_vault'`);
    expect(ext?.version).toMatch(/^0\.3\./);
    expect(Buffer.from(migration.key, "base64")).toHaveLength(32);
  });

  it("the scan finds a key written the way create_secret writes it, in the encoding it was given", async () => {
    // What the migrations did before: the key handed straight to vault.create_secret.
    const from = await currentLsn(scratch.db);
    const [made] = await scratch.db.query<{ id: string }>(
      `select vault.create_secret(encode(extensions.gen_random_bytes(32), 'base64'), 'sigyl_wal_check') as id`);
    const [row] = await scratch.db.query<{ key: string }>(
      `select decrypted_secret as key from vault.decrypted_secrets where id = $1::uuid`, [made.id]);
    const to = await currentLsn(scratch.db);
    expect(keyTraces(await walBetween(scratch.db, from, to), row.key)).toContain("base64");
  });

  it("the scan finds a key in each of its encodings when a row holds it so", async () => {
    const key = (await scratch.db.query<{ key: string }>(`select encode(extensions.gen_random_bytes(32), 'base64') as key`))[0].key;
    const enc = keyEncodings(key);
    const from = await currentLsn(scratch.db);
    await scratch.db.exec(`create table public.wal_scan_check (raw bytea, text_forms text[])`);
    await scratch.db.query(`insert into public.wal_scan_check values (decode($1, 'base64'), $2::text[])`,
      [key, [enc.base64, enc.base64url, enc.hex, enc.HEX].map((b) => b.toString())]);
    const to = await currentLsn(scratch.db);
    expect(keyTraces(await walBetween(scratch.db, from, to), key).sort()).toEqual(["HEX", "base64", "base64url", "hex", "raw"]);
  });

  it("the migrations create KEK v1 without writing it to the WAL in any encoding", async () => {
    const wal = await walBetween(scratch.db, migration.from, migration.to);
    // The scan reads the records that made the Vault row: its ciphertext is there (a WAL page
    // header may split it, hence the windows).
    const [stored] = await scratch.db.query<{ secret: string }>(`select secret from vault.secrets where name = 'sigyl_kek_v1'`);
    expect(walHolds(wal, Buffer.from(stored.secret))).toBe(true);
    expect(stored.secret).not.toContain(migration.key);
    expect(keyTraces(wal, migration.key)).toEqual([]);
  });

  it("a rotation creates the next KEK without writing it to the WAL in any encoding", async () => {
    const from = await currentLsn(scratch.db);
    const [started] = await scratch.db.query<{ to_version: number; created: boolean }>(
      `select to_version, created from private.begin_key_rotation()`);
    expect(started).toMatchObject({ to_version: 2, created: true });
    const to = await currentLsn(scratch.db);
    const keys = await scratch.db.query<{ version: number; material: string }>(
      `select version, material from private.load_keyring() order by version`);
    expect(keys.map((k) => k.version)).toEqual([1, 2]);
    const wal = await walBetween(scratch.db, from, to);
    const [stored] = await scratch.db.query<{ secret: string }>(`select secret from vault.secrets where name = 'sigyl_kek_v2'`);
    expect(walHolds(wal, Buffer.from(stored.secret))).toBe(true);
    for (const k of keys) expect(keyTraces(wal, k.material), `KEK v${k.version}`).toEqual([]);
  });
});
