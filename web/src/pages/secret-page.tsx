/**
 * One secret: its details and state, the value (masked; revealed on request, one audited read,
 * hidden again after a while), a new version with check-and-set, the version history with
 * roll-back, sharing, and its audit trail. What the caller may do follows its level.
 */
import { type FormEvent, useEffect, useRef, useState } from "react";
import { atLeast, describeError, type Grant, LEVELS, levelWords, type Secret, SigylApiError, unwrap } from "../api.ts";
import { href, navigate } from "../router.ts";
import { checkValue } from "../rules.ts";
import { useSession } from "../session.tsx";
import { Alert, ErrorAlert, Field, Loading, StatusBadge, useLoad, when } from "../ui.tsx";
import AuditViewer from "./audit-viewer.tsx";

/** How long a revealed value stays on screen. */
const REVEAL_SECONDS = 30;

export default function SecretPage({ id }: { id: string }) {
  const { api } = useSession();
  const meta = useLoad(() => unwrap(api.GET("/secrets/{id}", { params: { path: { id } } })), [api, id]);
  const [versionsTick, setVersionsTick] = useState(0);
  const changed = () => {
    meta.reload();
    setVersionsTick((t) => t + 1);
  };

  if (meta.error) return <section><h1>Secret</h1><ErrorAlert error={meta.error} /><p><a href={href.secrets()}>Back to your secrets</a></p></section>;
  if (!meta.data) return <Loading what="the secret" />;
  const s = meta.data;
  const live = s.status !== "deleted";
  return (
    <section className="secret">
      <div className="page-head">
        <h1 className="mono">{s.name}</h1>
        <StatusBadge status={s.status} />
      </div>
      {s.status === "expired" && <Alert kind="info">This secret expired {when(s.expiresAt)}: its value is no longer served.</Alert>}
      {s.status === "inactive" && <Alert kind="info">This secret is switched off: its value is not served until it is switched on.</Alert>}
      {s.status === "deleted" && <Alert kind="info">This secret is deleted. Admins can restore it from Deleted secrets.</Alert>}
      <dl className="meta">
        <dt>Your access</dt><dd>{levelWords(s.permission)}</dd>
        <dt>Type</dt><dd>{s.secretType}</dd>
        <dt>Description</dt><dd>{s.description || "—"}</dd>
        <dt>Tags</dt><dd>{s.tags.length ? s.tags.map((t) => <span className="tag" key={t}>{t}</span>) : "—"}</dd>
        <dt>Current version</dt><dd>{s.currentVersion}</dd>
        <dt>Expires</dt><dd>{when(s.expiresAt)}</dd>
        <dt>Updated</dt><dd>{when(s.updatedAt)}</dd>
      </dl>
      {live && atLeast(s.permission, "write") && (
        <p className="actions"><a className="button" href={href.edit(s.id)}>Edit details</a><ActiveToggle secret={s} onChanged={changed} /></p>
      )}
      <ValuePanel secret={s} onRevealed={() => setVersionsTick((t) => t + 1)} />
      {live && atLeast(s.permission, "write") && <NewVersion secret={s} onSaved={changed} onReload={changed} />}
      {atLeast(s.permission, "read") && <Versions secret={s} tick={versionsTick} onRolledBack={changed} />}
      <Sharing secret={s} />
      {atLeast(s.permission, "admin") && (
        <section className="card" aria-labelledby="audit-h">
          <h2 id="audit-h">Audit trail</h2>
          <AuditViewer secretId={s.id} embedded refresh={versionsTick} />
        </section>
      )}
      {live && atLeast(s.permission, "admin") && <DeleteSecret secret={s} />}
    </section>
  );
}

function ActiveToggle({ secret, onChanged }: { secret: Secret; onChanged: () => void }) {
  const { api } = useSession();
  const [error, setError] = useState<string | null>(null);
  const toggle = async () => {
    try {
      await unwrap(api.PATCH("/secrets/{id}", { params: { path: { id: secret.id } }, body: { isActive: !secret.isActive } }));
      onChanged();
    } catch (err) {
      setError(describeError(err));
    }
  };
  return (
    <>
      <button type="button" onClick={() => void toggle()}>{secret.isActive ? "Switch off" : "Switch on"}</button>
      {error && <Alert>{error}</Alert>}
    </>
  );
}

/**
 * The value, masked until the user asks. A revealed value lives in this component's state
 * only: never stored, logged or put in the URL; it is dropped when hidden, after
 * REVEAL_SECONDS, when the tab is hidden and when the page is left.
 */
function ValuePanel({ secret, onRevealed }: { secret: Secret; onRevealed: () => void }) {
  const { api } = useSession();
  const [shown, setShown] = useState<{ version: number; value: string } | null>(null);
  const [left, setLeft] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const [copied, setCopied] = useState<string | null>(null);

  useEffect(() => {
    if (!shown) return;
    const timer = setInterval(() => setLeft((n) => n - 1), 1000);
    const onHidden = () => document.visibilityState === "hidden" && setShown(null);
    document.addEventListener("visibilitychange", onHidden);
    return () => {
      clearInterval(timer);
      document.removeEventListener("visibilitychange", onHidden);
    };
  }, [shown]);
  useEffect(() => {
    if (shown && left <= 0) setShown(null);
  }, [left, shown]);

  if (!atLeast(secret.permission, "read")) {
    return (
      <section className="card" aria-labelledby="value-h">
        <h2 id="value-h">Value</h2>
        <p>Your access is <strong>use</strong>: you can bind this secret to your deployments, which receive its value, but you cannot see it.</p>
      </section>
    );
  }

  const reveal = async () => {
    setError(null);
    setCopied(null);
    try {
      const v = await unwrap(api.GET("/secrets/{id}/value", { params: { path: { id: secret.id } } }));
      setShown({ version: v.version, value: v.value });
      setLeft(REVEAL_SECONDS);
      onRevealed();
    } catch (err) {
      setError(err);
    }
  };
  const copy = async () => {
    if (!shown) return;
    try {
      await navigator.clipboard.writeText(shown.value);
      setCopied("Copied to the clipboard.");
    } catch {
      setCopied("The browser refused the clipboard; select the value and copy it instead.");
    }
  };
  const hide = () => {
    setShown(null);
    setCopied(null);
  };

  return (
    <section className="card" aria-labelledby="value-h">
      <h2 id="value-h">Value</h2>
      {shown ? (
        <>
          <p className="hint">Version {shown.version}. Hidden again in {left} s.</p>
          <code className="value" aria-label="Secret value">{shown.value}</code>
          <p className="actions">
            <button type="button" onClick={() => void copy()}>Copy</button>
            <button type="button" onClick={hide}>Hide</button>
          </p>
          {copied && <p role="status" className="hint">{copied}</p>}
        </>
      ) : (
        <>
          <p className="masked" aria-label="Value hidden">••••••••••••</p>
          <p className="hint">Revealing reads the value once and records it in the audit trail.</p>
          <button type="button" onClick={() => void reveal()} disabled={secret.status !== "active"}>Reveal</button>
        </>
      )}
      {error !== null && <ErrorAlert error={error} />}
    </section>
  );
}

/** A new version, checked against the version this page loaded: a stale one is a conflict. */
function NewVersion({ secret, onSaved, onReload }: { secret: Secret; onSaved: () => void; onReload: () => void }) {
  const { api } = useSession();
  const [value, setValue] = useState("");
  const [touched, setTouched] = useState(false);
  const [conflict, setConflict] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState<number | null>(null);
  const problem = checkValue(value);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setTouched(true);
    setError(null);
    setSaved(null);
    if (problem) return;
    try {
      const s = await unwrap(api.PUT("/secrets/{id}/value", {
        params: { path: { id: secret.id } }, body: { value, expectedVersion: secret.currentVersion },
      }));
      setValue("");
      setTouched(false);
      setConflict(false);
      setSaved(s.currentVersion);
      onSaved();
    } catch (err) {
      if (err instanceof SigylApiError && err.code === "version_conflict") setConflict(true);
      else setError(describeError(err));
    }
  };

  return (
    <section className="card" aria-labelledby="newversion-h">
      <h2 id="newversion-h">New version</h2>
      <form onSubmit={submit} noValidate>
        <Field label="New value" error={touched ? problem : null} hint={`Replaces version ${secret.currentVersion}; older versions stay in the history.`}>
          {(p) => (
            <textarea {...p} className="mono secret-input" rows={2} autoComplete="off" spellCheck={false}
              value={value} onChange={(e) => { setValue(e.target.value); setTouched(true); }} />
          )}
        </Field>
        {conflict && (
          <Alert>
            Someone saved a newer version after you opened this page, so version {secret.currentVersion} is no longer current.
            Nothing was saved. <button type="button" onClick={() => { setConflict(false); onReload(); }}>Reload the secret</button>
          </Alert>
        )}
        {error && <Alert>{error}</Alert>}
        {saved !== null && <Alert kind="success">Saved as version {saved}.</Alert>}
        <button type="submit" className="primary">Save new version</button>
      </form>
    </section>
  );
}

function Versions({ secret, tick, onRolledBack }: { secret: Secret; tick: number; onRolledBack: () => void }) {
  const { api, userId } = useSession();
  const versions = useLoad(() => unwrap(api.GET("/secrets/{id}/versions", { params: { path: { id: secret.id } } })), [api, secret.id, tick]);
  const [error, setError] = useState<string | null>(null);

  const rollback = async (n: number) => {
    setError(null);
    try {
      await unwrap(api.POST("/secrets/{id}/versions/{n}/restore", {
        params: { path: { id: secret.id, n: String(n) } }, body: { expectedVersion: secret.currentVersion },
      }));
      onRolledBack();
    } catch (err) {
      setError(err instanceof SigylApiError && err.code === "version_conflict"
        ? "A newer version was saved meanwhile; the history is reloaded, try again."
        : describeError(err));
      if (err instanceof SigylApiError && err.code === "version_conflict") onRolledBack();
    }
  };

  return (
    <section className="card" aria-labelledby="versions-h">
      <h2 id="versions-h">Version history</h2>
      {versions.error ? <ErrorAlert error={versions.error} /> : !versions.data ? <Loading what="versions" /> : (
        <div className="table-wrap">
          <table>
            <thead><tr><th scope="col">Version</th><th scope="col">Saved</th><th scope="col">By</th><th scope="col">Note</th><th scope="col"><span className="visually-hidden">Actions</span></th></tr></thead>
            <tbody>
              {versions.data.map((v) => (
                <tr key={v.version}>
                  <td data-label="Version">{v.version}{v.current && " (current)"}</td>
                  <td data-label="Saved">{when(v.createdAt)}</td>
                  <td data-label="By">{v.createdBy === userId ? "you" : v.createdBy ?? "—"}</td>
                  <td data-label="Note">{v.restoredFrom ? `roll-back to ${v.restoredFrom}` : ""}</td>
                  <td>
                    {!v.current && secret.status !== "deleted" && atLeast(secret.permission, "write") && (
                      <button type="button" onClick={() => void rollback(v.version)} aria-label={`Roll back to version ${v.version}`}>Roll back</button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {error && <Alert>{error}</Alert>}
    </section>
  );
}

function Sharing({ secret }: { secret: Secret }) {
  const { api, userId } = useSession();
  const admin = atLeast(secret.permission, "admin");
  const grants = useLoad(
    () => admin ? unwrap(api.GET("/secrets/{id}/permissions", { params: { path: { id: secret.id } } })) : Promise.resolve([] as Grant[]),
    [api, secret.id, admin],
  );
  const [email, setEmail] = useState("");
  const [level, setLevel] = useState<Grant["permission"]>("use");
  const [notice, setNotice] = useState<{ kind: "error" | "success"; text: string } | null>(null);

  const act = async (what: () => Promise<unknown>, done: string, after?: () => void) => {
    setNotice(null);
    try {
      await what();
      setNotice({ kind: "success", text: done });
      (after ?? grants.reload)();
    } catch (err) {
      setNotice({
        kind: "error",
        text: err instanceof SigylApiError && err.code === "user_not_found" ? "No user has this email." : describeError(err),
      });
    }
  };
  const grant = (e: FormEvent) => {
    e.preventDefault();
    void act(() => unwrap(api.PUT("/secrets/{id}/permissions", { params: { path: { id: secret.id } }, body: { email: email.trim(), permission: level } })),
      `Shared with ${email.trim()} as ${level}.`, () => { setEmail(""); grants.reload(); });
  };
  const change = (g: Grant, permission: Grant["permission"]) =>
    void act(() => unwrap(api.PUT("/secrets/{id}/permissions", { params: { path: { id: secret.id } }, body: { userId: g.userId, permission } })),
      `${g.email ?? g.userId} now has ${permission}.`);
  const revoke = (g: Grant) =>
    void act(() => unwrap(api.DELETE("/secrets/{id}/permissions/{userId}", { params: { path: { id: secret.id, userId: g.userId } } })),
      `${g.email ?? g.userId} no longer has access.`);

  if (!admin) {
    if (secret.permission === "owner") return null;
    return (
      <section className="card" aria-labelledby="sharing-h">
        <h2 id="sharing-h">Your access</h2>
        <p>This secret is shared with you as <strong>{secret.permission}</strong> ({levelWords(secret.permission)}).</p>
        <button type="button" onClick={() => void act(
          () => unwrap(api.DELETE("/secrets/{id}/permissions/{userId}", { params: { path: { id: secret.id, userId } } })),
          "You no longer have access.", () => navigate(href.secrets()),
        )}>Drop my access</button>
        {notice && <Alert kind={notice.kind}>{notice.text}</Alert>}
      </section>
    );
  }

  return (
    <section className="card" aria-labelledby="sharing-h">
      <h2 id="sharing-h">Sharing</h2>
      {grants.error ? <ErrorAlert error={grants.error} /> : !grants.data ? <Loading what="grants" /> : grants.data.length === 0 ? (
        <p className="empty">Not shared with anyone.</p>
      ) : (
        <ul className="grants">
          {grants.data.map((g) => (
            <li key={g.userId}>
              <span className="grantee">{g.email ?? g.userId}{g.userId === userId && " (you)"}</span>
              <label className="visually-hidden" htmlFor={`level-${g.userId}`}>Access of {g.email ?? g.userId}</label>
              <select id={`level-${g.userId}`} value={g.permission} onChange={(e) => change(g, e.target.value as Grant["permission"])}>
                {LEVELS.map((l) => <option key={l.level} value={l.level}>{l.level}: {l.words}</option>)}
              </select>
              <button type="button" onClick={() => revoke(g)} aria-label={`Revoke access of ${g.email ?? g.userId}`}>Revoke</button>
            </li>
          ))}
        </ul>
      )}
      {secret.status !== "deleted" && (
        <form onSubmit={grant} className="share-form">
          <Field label="Share with (email)">
            {(p) => <input {...p} type="email" required autoComplete="off" value={email} onChange={(e) => setEmail(e.target.value)} />}
          </Field>
          <fieldset>
            <legend>Access level</legend>
            {LEVELS.map((l) => (
              <label key={l.level} className="radio">
                <input type="radio" name="level" value={l.level} checked={level === l.level} onChange={() => setLevel(l.level)} />
                <span><strong>{l.level}</strong>: {l.words}</span>
              </label>
            ))}
          </fieldset>
          <button type="submit" className="primary">Share</button>
        </form>
      )}
      {notice && <Alert kind={notice.kind}>{notice.text}</Alert>}
    </section>
  );
}

function DeleteSecret({ secret }: { secret: Secret }) {
  const { api } = useSession();
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const confirmRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (confirming) confirmRef.current?.focus();
  }, [confirming]);
  const remove = async () => {
    try {
      await unwrap(api.DELETE("/secrets/{id}", { params: { path: { id: secret.id } } }));
      navigate(href.deleted());
    } catch (err) {
      setError(describeError(err));
    }
  };
  return (
    <section className="card danger" aria-labelledby="delete-h">
      <h2 id="delete-h">Delete</h2>
      <p>Deleting stops serving the value and breaks deployments bound to it. Admins can restore it during the recovery window.</p>
      {confirming ? (
        <p className="actions">
          <button type="button" ref={confirmRef} className="danger" onClick={() => void remove()}>Delete {secret.name} now</button>
          <button type="button" onClick={() => setConfirming(false)}>Keep it</button>
        </p>
      ) : <button type="button" className="danger" onClick={() => setConfirming(true)}>Delete…</button>}
      {error && <Alert>{error}</Alert>}
    </section>
  );
}
