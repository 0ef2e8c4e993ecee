/**
 * Signing in with Supabase Auth through supabase-js: sign-up, password sign-in, the session
 * kept (and refreshed) by supabase-js across reloads, sign-out. When the session ends (signed
 * out elsewhere, a refresh refused, the API answering 401) the sign-in form takes the place of
 * the page; the route stays in the address bar, so signing in again returns to it.
 */
import type { Session, SupabaseClient } from "@supabase/supabase-js";
import { createContext, type FormEvent, type ReactNode, useContext, useEffect, useMemo, useRef, useState } from "react";
import { type Api, createApi } from "./api.ts";
import { Alert, Field } from "./ui.tsx";

interface Ctx {
  supabase: SupabaseClient;
  api: Api;
  session: Session;
  userId: string;
  email: string;
  /** Signs out everywhere (all of the user's sessions), as the user asked. */
  signOut: () => void;
}

const SessionContext = createContext<Ctx | null>(null);

export function useSession(): Ctx {
  const ctx = useContext(SessionContext);
  if (!ctx) throw new Error("useSession outside a signed-in page");
  return ctx;
}

export function SessionGate({ supabase, projectUrl, children }: { supabase: SupabaseClient; projectUrl: string; children: ReactNode }) {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [ended, setEnded] = useState(false);
  const leaving = useRef(false);

  useEffect(() => {
    let live = true;
    supabase.auth.getSession().then(({ data }) => live && setSession(data.session));
    const { data } = supabase.auth.onAuthStateChange((event, s) => {
      setSession(s);
      if (event === "SIGNED_IN") setEnded(false);
      // Signed out without asking: the session ended elsewhere or could not be refreshed.
      if (event === "SIGNED_OUT" && !leaving.current) setEnded(true);
      leaving.current = false;
    });
    return () => {
      live = false;
      data.subscription.unsubscribe();
    };
  }, [supabase]);

  const api = useMemo(() => createApi(projectUrl, supabase, () => {
    setEnded(true);
    // Only this browser's copy: the server already refused the session.
    void supabase.auth.signOut({ scope: "local" });
  }), [projectUrl, supabase]);

  if (session === undefined) return <p className="loading" role="status">Checking your session…</p>;
  if (session === null) return <SignIn supabase={supabase} ended={ended} />;
  const signOut = () => {
    leaving.current = true;
    void supabase.auth.signOut();
  };
  const ctx: Ctx = { supabase, api, session, userId: session.user.id, email: session.user.email ?? "", signOut };
  return <SessionContext.Provider value={ctx}>{children}</SessionContext.Provider>;
}

function SignIn({ supabase, ended }: { supabase: SupabaseClient; ended: boolean }) {
  const [mode, setMode] = useState<"in" | "up">("in");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const { error } = mode === "in"
      ? await supabase.auth.signInWithPassword({ email, password })
      : await supabase.auth.signUp({ email, password });
    setBusy(false);
    if (error) setError(error.message);
  };

  return (
    <main className="signin" id="main">
      <h1>Sigyl Secrets</h1>
      <p className="lede">Store API keys and credentials, share them, and bind them to your deployments.</p>
      {ended && <Alert kind="info">Your session has ended. Sign in again to return to the page you were on.</Alert>}
      <div className="tabs" role="group" aria-label="Sign in or create an account">
        <button type="button" aria-pressed={mode === "in"} onClick={() => setMode("in")}>Sign in</button>
        <button type="button" aria-pressed={mode === "up"} onClick={() => setMode("up")}>Create account</button>
      </div>
      <form onSubmit={submit} className="card">
        <h2>{mode === "in" ? "Sign in" : "Create an account"}</h2>
        <Field label="Email">
          {(p) => <input {...p} type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />}
        </Field>
        <Field label="Password" hint={mode === "up" ? "At least 6 characters." : undefined}>
          {(p) => (
            <input {...p} type="password" autoComplete={mode === "in" ? "current-password" : "new-password"} required
              minLength={mode === "up" ? 6 : undefined} value={password} onChange={(e) => setPassword(e.target.value)} />
          )}
        </Field>
        {error && <Alert>{error}</Alert>}
        <button type="submit" className="primary" disabled={busy}>{mode === "in" ? "Sign in" : "Create account"}</button>
      </form>
    </main>
  );
}
