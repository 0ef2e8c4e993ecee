/**
 * The deployment wizard's secret picker: for each env var the MCP server requires, a secret
 * the user may use (own or shared, `use` included), optionally a pinned version (read or
 * above), then the validation the deploy will run, each problem next to its variable, and
 * each binding's status (bound, missing, expired, deleted, outdated). `#/deployments` lists the
 * caller's deployments; the platform (which registers them) opens one at `#/deployments/<id>`.
 */
import { type FormEvent, useEffect, useState } from "react";
import { atLeast, type Binding, describeError, type Problem, type Secret, unwrap } from "../api.ts";
import { href, navigate } from "../router.ts";
import { useSession } from "../session.tsx";
import { Alert, ErrorAlert, Field, Loading, Pager, StatusBadge, useLoad, usePages } from "../ui.tsx";

/** Most secrets offered in a picker (pages of 100). */
const MAX_CANDIDATES = 1000;

export default function DeploymentWizard({ id }: { id?: string }) {
  return id ? <Wizard id={id} /> : <OpenDeployment />;
}

const STATUS_CHOICES = [["", "Any status"], ["pending", "pending"], ["deploying", "deploying"], ["running", "running"],
  ["failed", "failed"], ["stopped", "stopped"]] as const;

/** The caller's deployments, a page at a time, each opening its picker; or one opened by id. */
function OpenDeployment() {
  const { api } = useSession();
  const [status, setStatus] = useState<(typeof STATUS_CHOICES)[number][0]>("");
  const pages = usePages();
  const list = useLoad(() =>
    unwrap(api.GET("/secrets/deployments", {
      params: { query: { status: status || undefined, cursor: pages.cursor, limit: "25" } },
    })), [api, status, pages.cursor]);
  const items = list.data?.items ?? [];

  const [id, setId] = useState("");
  const valid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id.trim());
  const open = (e: FormEvent) => {
    e.preventDefault();
    if (valid) navigate(href.deployment(id.trim()));
  };
  return (
    <section>
      <h1>Deployments</h1>
      <p className="lede">Your MCP server deployments. Open one to choose the secret for each env var it needs; your platform registers deployments when you deploy.</p>
      <form className="filters narrow" aria-label="Filter deployments" onSubmit={(e) => e.preventDefault()}>
        <Field label="Status">
          {(p) => (
            <select {...p} value={status} onChange={(e) => { setStatus(e.target.value as typeof status); pages.reset(); }}>
              {STATUS_CHOICES.map(([v, label]) => <option key={v} value={v}>{label}</option>)}
            </select>
          )}
        </Field>
      </form>
      {list.error ? <ErrorAlert error={list.error} /> : list.loading && !list.data ? <Loading what="deployments" /> : items.length === 0 ? (
        <p className="empty">{status ? `No deployment is ${status}.` : "No deployments yet. Deploy an MCP server on the platform and it appears here."}</p>
      ) : (
        <div className="table-wrap" aria-busy={list.loading}>
          <table className="deployments">
            <caption className="visually-hidden">Your deployments</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col">Bound</th>
                <th scope="col">Still to bind</th>
              </tr>
            </thead>
            <tbody>
              {items.map((d) => (
                <tr key={d.id}>
                  <td data-label="Name"><a className="mono" href={href.deployment(d.id)}>{d.name}</a></td>
                  <td data-label="Status"><StatusBadge status={d.status} /></td>
                  <td data-label="Bound">{d.bindingCount}</td>
                  <td data-label="Still to bind">
                    {d.unboundEnv.length === 0 ? "nothing" : (
                      <ul className="inline" aria-label={`Env vars ${d.name} still needs bound`}>
                        {d.unboundEnv.map((n) => <li key={n} className="tag mono">{n}</li>)}
                      </ul>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Pager page={pages.page} nextCursor={list.data?.nextCursor} onNext={pages.next} onPrevious={pages.previous} />
      <section className="card spaced" aria-labelledby="open-by-id-h">
        <h2 id="open-by-id-h">Open a deployment by id</h2>
        <form className="form" onSubmit={open}>
          <Field label="Deployment id" error={id && !valid ? "A deployment id looks like 5e0c1a2b-…: 36 characters." : null}>
            {(p) => <input {...p} className="mono" autoComplete="off" spellCheck={false} value={id} onChange={(e) => setId(e.target.value)} />}
          </Field>
          <button type="submit" className="primary" disabled={!valid}>Open</button>
        </form>
      </section>
    </section>
  );
}

type Draft = Record<string, { secretId: string; version: string }>;
type Report = { deployment: { id: string; name: string; status: string; requiredEnv: string[] }; bindings: Binding[]; problems: Problem[]; valid: boolean };

function bindingStatus(b: Binding | undefined): string {
  if (!b) return "missing";
  if (b.status === "ok") return b.outdated ? "outdated" : "bound";
  return ({ secret_expired: "expired", secret_deleted: "deleted", secret_inactive: "inactive" } as Record<string, string>)[b.status] ?? b.status;
}

function Wizard({ id }: { id: string }) {
  const { api } = useSession();
  const [report, setReport] = useState<Report | null>(null);
  const [candidates, setCandidates] = useState<Secret[] | null>(null);
  const [draft, setDraft] = useState<Draft>({});
  const [validation, setValidation] = useState<{ valid: boolean; problems: Problem[] } | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);

  const adopt = (r: Report) => {
    setReport(r);
    setDraft(Object.fromEntries(r.bindings.map((b) => [b.envName, { secretId: b.secretId, version: b.pinnedVersion ? String(b.pinnedVersion) : "" }])));
  };

  useEffect(() => {
    unwrap(api.GET("/secrets/deployments/{id}/secrets", { params: { path: { id } } })).then(adopt, setLoadError);
    (async () => {
      const all: Secret[] = [];
      let cursor: string | undefined;
      do {
        const page = await unwrap(api.GET("/secrets", { params: { query: { limit: "100", cursor } } }));
        all.push(...page.items);
        cursor = page.nextCursor ?? undefined;
      } while (cursor && all.length < MAX_CANDIDATES);
      setCandidates(all);
    })().catch(setLoadError);
  }, [api, id]);

  if (loadError) return <section><h1>Deployment</h1><ErrorAlert error={loadError} /></section>;
  if (!report || !candidates) return <Loading what="the deployment" />;

  const { deployment } = report;
  const envs = [...new Set([...deployment.requiredEnv, ...report.bindings.map((b) => b.envName)])];
  const byId = new Map(candidates.map((s) => [s.id, s]));
  const problemsOf = (env: string) => (validation?.problems ?? report.problems).filter((p) => p.envName === env);
  const locked = deployment.status === "deploying";

  const set = (env: string, change: Partial<Draft[string]>) => {
    setSaved(false);
    setValidation(null);
    setDraft((d) => ({ ...d, [env]: { ...(d[env] ?? { secretId: "", version: "" }), ...change } }));
  };

  const save = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const bindings = Object.entries(draft).filter(([, b]) => b.secretId).map(([envName, b]) => ({
        envName, secretId: b.secretId, ...(b.version && { version: Number(b.version) }),
      }));
      adopt(await unwrap(api.PUT("/secrets/deployments/{id}/secrets", { params: { path: { id } }, body: { bindings } })));
      setSaved(true);
      setValidation(await unwrap(api.POST("/secrets/deployments/{id}/validate", { params: { path: { id } } })));
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  const validate = async () => {
    setError(null);
    try {
      setValidation(await unwrap(api.POST("/secrets/deployments/{id}/validate", { params: { path: { id } } })));
    } catch (err) {
      setError(describeError(err));
    }
  };

  const usable = candidates.filter((s) => s.status !== "deleted");
  return (
    <section>
      <div className="page-head">
        <h1>{deployment.name}</h1>
        <StatusBadge status={deployment.status} />
      </div>
      <p className="lede">Choose the secret each environment variable gets. You may bind secrets you own or that are shared with you, even at <strong>use</strong>: the deployment receives the value, you never see it.</p>
      {locked && <Alert kind="info">This deployment is deploying: its bindings cannot change until it is done.</Alert>}
      <form onSubmit={save} className="wizard">
        {envs.length === 0 && <p className="empty">This MCP server requires no environment variable.</p>}
        {envs.map((env) => {
          const pick = draft[env] ?? { secretId: "", version: "" };
          const chosen = byId.get(pick.secretId);
          const binding = report.bindings.find((b) => b.envName === env);
          const problems = problemsOf(env);
          const mayPin = atLeast(chosen?.permission, "read");
          return (
            <fieldset key={env} className={`card binding${problems.length ? " has-problem" : ""}`} data-env={env}>
              <legend><span className="mono">{env}</span> {deployment.requiredEnv.includes(env) ? "" : "(not required)"}</legend>
              <p className="binding-status">Status: <StatusBadge status={bindingStatus(binding)} />
                {binding?.outdated && binding.currentVersion !== null && <span className="hint"> version {binding.currentVersion} is newer than the one deployed</span>}
              </p>
              <Field label={`Secret for ${env}`}>
                {(p) => (
                  <select {...p} value={pick.secretId} disabled={locked} onChange={(e) => set(env, { secretId: e.target.value, version: "" })}>
                    <option value="">— not bound —</option>
                    {pick.secretId && !chosen && <option value={pick.secretId}>{binding?.secretName ?? "a secret you can no longer see"}</option>}
                    {usable.map((s) => (
                      <option key={s.id} value={s.id}>{s.name} ({s.permission === "owner" ? "yours" : `shared: ${s.permission}`}{s.status !== "active" ? `, ${s.status}` : ""})</option>
                    ))}
                  </select>
                )}
              </Field>
              <Field label={`Pin a version of ${env} (optional)`}
                hint={chosen && !mayPin ? "Your access is use: the deployment gets the current version." : "Empty: the version current when it deploys."}>
                {(p) => (
                  <input {...p} type="number" min={1} step={1} inputMode="numeric" disabled={locked || !chosen || !mayPin}
                    value={pick.version} onChange={(e) => set(env, { version: e.target.value })} />
                )}
              </Field>
              {problems.length > 0 && (
                <ul className="problems" aria-label={`Problems of ${env}`}>
                  {problems.map((p) => <li key={p.problem}>{p.message}</li>)}
                </ul>
              )}
            </fieldset>
          );
        })}
        {error && <Alert>{error}</Alert>}
        {saved && <Alert kind="success">Bindings saved.</Alert>}
        {validation && (validation.valid
          ? <Alert kind="success">Validation passed: this deployment can deploy.</Alert>
          : <Alert>Validation found {validation.problems.length} problem{validation.problems.length === 1 ? "" : "s"}: {validation.problems.map((p) => p.envName).join(", ")}.</Alert>)}
        <div className="actions">
          <button type="submit" className="primary" disabled={busy || locked}>Save and validate</button>
          <button type="button" onClick={() => void validate()}>Validate</button>
        </div>
      </form>
    </section>
  );
}
