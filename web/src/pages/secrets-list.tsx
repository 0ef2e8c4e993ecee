/**
 * The secrets the caller can see (own and shared), a page at a time: search by name, filters
 * by type, tag and expiry, states and the caller's level. With `deleted`, the deleted ones,
 * restorable by admins within the recovery window.
 */
import { useState } from "react";
import { atLeast, describeError, type Secret, unwrap } from "../api.ts";
import { href } from "../router.ts";
import { SECRET_TYPES } from "../rules.ts";
import { useSession } from "../session.tsx";
import { Alert, ErrorAlert, Field, Loading, Pager, StatusBadge, untilText, useLoad, usePages, when } from "../ui.tsx";

const EXPIRY_CHOICES = [["", "Any time"], ["1d", "1 day"], ["7d", "7 days"], ["30d", "30 days"]] as const;
/** A live secret expiring within this is flagged in the list, whatever the filter. */
const SOON_MS = 7 * 86_400_000;

export function SecretsList({ deleted }: { deleted: boolean }) {
  const { api } = useSession();
  const [prefix, setPrefix] = useState("");
  const [type, setType] = useState<"" | Secret["secretType"]>("");
  const [tag, setTag] = useState("");
  const [expiring, setExpiring] = useState("");
  const [inactive, setInactive] = useState(true);
  const pages = usePages();
  const [notice, setNotice] = useState<{ kind: "error" | "success"; text: string } | null>(null);

  const list = useLoad(() =>
    unwrap(api.GET("/secrets", {
      params: {
        query: {
          prefix: prefix.trim() || undefined,
          type: type || undefined,
          tag: tag.trim() || undefined,
          expiringWithin: expiring || undefined,
          includeInactive: !deleted && inactive && !expiring ? "true" : undefined,
          deleted: deleted ? "true" : undefined,
          cursor: pages.cursor,
          limit: "25",
        },
      },
    })), [api, prefix, type, tag, expiring, inactive, deleted, pages.cursor]);

  /** Filters change the result set: start again from its first page. */
  const filter = <T,>(set: (v: T) => void) => (v: T) => {
    set(v);
    pages.reset();
  };

  const restore = async (s: Secret) => {
    setNotice(null);
    try {
      await unwrap(api.POST("/secrets/{id}/restore", { params: { path: { id: s.id } } }));
      setNotice({ kind: "success", text: `${s.name} is restored.` });
      list.reload();
    } catch (err) {
      setNotice({ kind: "error", text: describeError(err) });
    }
  };

  const filtered = Boolean(prefix || type || tag || expiring);
  const items = list.data?.items ?? [];
  return (
    <section>
      <div className="page-head">
        <h1>{deleted ? "Deleted secrets" : "Secrets"}</h1>
        {!deleted && <a className="button primary" href={href.newSecret()}>New secret</a>}
      </div>
      {deleted && <p className="lede">Deleted secrets can be restored by their admins until the recovery window ends; then they are purged.</p>}
      <form className="filters" role="search" aria-label="Filter secrets" onSubmit={(e) => e.preventDefault()}>
        <Field label="Name starts with">
          {(p) => <input {...p} type="search" value={prefix} onChange={(e) => filter(setPrefix)(e.target.value)} />}
        </Field>
        <Field label="Type">
          {(p) => (
            <select {...p} value={type} onChange={(e) => filter(setType)(e.target.value as typeof type)}>
              <option value="">All types</option>
              {SECRET_TYPES.map((t) => <option key={t} value={t}>{t}</option>)}
            </select>
          )}
        </Field>
        <Field label="Tag">
          {(p) => <input {...p} value={tag} onChange={(e) => filter(setTag)(e.target.value)} />}
        </Field>
        {!deleted && (
          <>
            <Field label="Expiring within">
              {(p) => (
                <select {...p} value={expiring} onChange={(e) => filter(setExpiring)(e.target.value)}>
                  {EXPIRY_CHOICES.map(([v, label]) => <option key={v} value={v}>{label}</option>)}
                </select>
              )}
            </Field>
            <label className="check">
              <input type="checkbox" checked={inactive} onChange={(e) => filter(setInactive)(e.target.checked)} />
              Show inactive and expired
            </label>
          </>
        )}
      </form>
      {notice && <Alert kind={notice.kind}>{notice.text}</Alert>}
      {list.error ? <ErrorAlert error={list.error} /> : list.loading && !list.data ? <Loading what="secrets" /> : items.length === 0 ? (
        <p className="empty">
          {filtered ? "No secret matches these filters." : deleted ? "No deleted secret." : <>No secrets yet. <a href={href.newSecret()}>Create your first secret</a>.</>}
        </p>
      ) : (
        <div className="table-wrap" aria-busy={list.loading}>
          <table className="secrets">
            <caption className="visually-hidden">{deleted ? "Deleted secrets" : "Your secrets and those shared with you"}</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Type</th>
                <th scope="col">Tags</th>
                <th scope="col">State</th>
                <th scope="col">Your access</th>
                <th scope="col">{deleted ? "Deleted" : "Expires"}</th>
                {deleted && <th scope="col"><span className="visually-hidden">Actions</span></th>}
              </tr>
            </thead>
            <tbody>
              {items.map((s) => {
                const soon = s.status === "active" && s.expiresAt !== null && new Date(s.expiresAt).getTime() - Date.now() < SOON_MS;
                return (
                  <tr key={s.id}>
                    <td data-label="Name">{deleted ? <span className="mono">{s.name}</span> : <a className="mono" href={href.secret(s.id)}>{s.name}</a>}</td>
                    <td data-label="Type">{s.secretType}</td>
                    <td data-label="Tags">{s.tags.map((t) => <span key={t} className="tag">{t}</span>)}</td>
                    <td data-label="State">
                      <StatusBadge status={s.status} />
                      {soon && <span className="badge badge-soon">expires {untilText(s.expiresAt!)}</span>}
                    </td>
                    <td data-label="Your access">{s.permission}</td>
                    <td data-label={deleted ? "Deleted" : "Expires"}>{deleted ? when(s.deletedAt) : when(s.expiresAt)}</td>
                    {deleted && (
                      <td>
                        {atLeast(s.permission, "admin")
                          ? <button type="button" onClick={() => void restore(s)} aria-label={`Restore ${s.name}`}>Restore</button>
                          : <span className="hint">admins restore</span>}
                      </td>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <Pager page={pages.page} nextCursor={list.data?.nextCursor} onNext={pages.next} onPrevious={pages.previous} />
    </section>
  );
}
