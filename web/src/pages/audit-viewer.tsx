/**
 * The audit trail: of one secret (its admins), or the caller's own activity and events on the
 * secrets it owns or administers. Filters by action and date range, a page at a time, and the
 * filtered view as a CSV download.
 */
import { useState } from "react";
import { type AuditEntry, describeError, unwrap } from "../api.ts";
import { auditCsv } from "../csv.ts";
import { href } from "../router.ts";
import { useSession } from "../session.tsx";
import { Alert, ErrorAlert, Field, Loading, Pager, useLoad, usePages } from "../ui.tsx";

const ACTIONS = [
  "created", "accessed", "updated", "rotated", "deleted", "restored", "purged", "shared", "unshared",
  "expired", "denied", "key_rotated", "bound", "unbound",
] as const;
type Action = (typeof ACTIONS)[number];
const PAGE = 50;
/** Most rows a CSV download gathers. */
const CSV_MAX_ROWS = 10_000;

/** `yyyy-mm-dd` (a date input, local) as the start, or the end, of that day in ISO. */
const dayBound = (day: string, end: boolean) => {
  if (!day) return undefined;
  const d = new Date(`${day}T00:00:00`);
  if (Number.isNaN(d.getTime())) return undefined;
  if (end) d.setDate(d.getDate() + 1);
  return d.toISOString();
};

/** `refresh`: a number the owner changes to reload the rows (after an audited action). */
export default function AuditViewer({ secretId, embedded = false, refresh = 0 }: { secretId?: string; embedded?: boolean; refresh?: number }) {
  const { api, userId } = useSession();
  const [action, setAction] = useState<"" | Action>("");
  const [since, setSince] = useState("");
  const [until, setUntil] = useState("");
  const pages = usePages();
  const [csvError, setCsvError] = useState<string | null>(null);
  const [exporting, setExporting] = useState(false);

  const query = (cursor: string | undefined, limit: number) => ({
    action: action || undefined, since: dayBound(since, false), until: dayBound(until, true), cursor, limit: String(limit),
  });
  const fetchPage = (cursor: string | undefined, limit: number) => secretId
    ? unwrap(api.GET("/secrets/{id}/audit", { params: { path: { id: secretId }, query: query(cursor, limit) } }))
    : unwrap(api.GET("/secrets/audit", { params: { query: query(cursor, limit) } }));

  const page = useLoad(() => fetchPage(pages.cursor, PAGE), [api, secretId, action, since, until, pages.cursor, refresh]);
  const filter = <T,>(set: (v: T) => void) => (v: T) => {
    set(v);
    pages.reset();
  };

  const download = async () => {
    setCsvError(null);
    setExporting(true);
    try {
      const rows: AuditEntry[] = [];
      let cursor: string | undefined;
      do {
        const p = await fetchPage(cursor, 200);
        rows.push(...p.items);
        cursor = p.nextCursor ?? undefined;
      } while (cursor && rows.length < CSV_MAX_ROWS);
      const url = URL.createObjectURL(new Blob([auditCsv(rows)], { type: "text/csv;charset=utf-8" }));
      const a = document.createElement("a");
      a.href = url;
      a.download = `sigyl-audit${secretId ? `-${secretId}` : ""}-${new Date().toISOString().slice(0, 10)}.csv`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      setCsvError(describeError(err));
    } finally {
      setExporting(false);
    }
  };

  const actor = (e: AuditEntry) => (e.actorId === userId ? "you" : e.actorId ?? "—") + (e.actorType === "user" ? "" : ` (${e.actorType})`);
  const items = page.data?.items ?? [];
  const Heading = embedded ? "h3" : "h1";
  return (
    <section className="audit">
      {!embedded && <Heading>My activity</Heading>}
      {!embedded && <p className="lede">Your own actions, and every event on the secrets you own or administer.</p>}
      <form className="filters" aria-label="Filter the audit trail" onSubmit={(e) => e.preventDefault()}>
        <Field label="Action">
          {(p) => (
            <select {...p} value={action} onChange={(e) => filter(setAction)(e.target.value as typeof action)}>
              <option value="">All actions</option>
              {ACTIONS.map((a) => <option key={a} value={a}>{a}</option>)}
            </select>
          )}
        </Field>
        <Field label="From (day)">
          {(p) => <input {...p} type="date" value={since} onChange={(e) => filter(setSince)(e.target.value)} />}
        </Field>
        <Field label="To (day)">
          {(p) => <input {...p} type="date" value={until} onChange={(e) => filter(setUntil)(e.target.value)} />}
        </Field>
        <button type="button" onClick={() => void download()} disabled={exporting}>{exporting ? "Preparing CSV…" : "Download CSV"}</button>
      </form>
      {csvError && <Alert>{csvError}</Alert>}
      {page.error ? <ErrorAlert error={page.error} /> : !page.data ? <Loading what="the audit trail" /> : items.length === 0 ? (
        <p className="empty">No event matches.</p>
      ) : (
        <div className="table-wrap" aria-busy={page.loading}>
          <table className="audit-table">
            <thead>
              <tr>
                <th scope="col">When</th><th scope="col">Action</th>{!secretId && <th scope="col">Secret</th>}<th scope="col">Version</th>
                <th scope="col">Actor</th><th scope="col">Deployment</th><th scope="col">IP</th><th scope="col">User agent</th><th scope="col">Outcome</th>
              </tr>
            </thead>
            <tbody>
              {items.map((e) => (
                <tr key={e.id} data-action={e.action}>
                  <td data-label="When">{new Date(e.createdAt).toLocaleString()}</td>
                  <td data-label="Action">{e.action}</td>
                  {!secretId && (
                    <td data-label="Secret">{e.secretId ? <a className="mono" href={href.secret(e.secretId)}>{e.secretName ?? e.secretId}</a> : "—"}</td>
                  )}
                  <td data-label="Version">{e.version ?? "—"}</td>
                  <td data-label="Actor" className="mono small">{actor(e)}</td>
                  <td data-label="Deployment" className="mono small">{e.deploymentId ?? "—"}</td>
                  <td data-label="IP" className="mono small">{e.ip ?? "—"}</td>
                  <td data-label="User agent" className="small ua">{e.userAgent ?? "—"}</td>
                  <td data-label="Outcome">{e.outcome}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Pager page={pages.page} nextCursor={page.data?.nextCursor} onNext={pages.next} onPrevious={pages.previous} />
    </section>
  );
}
