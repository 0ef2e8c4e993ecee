import { createClient } from "@supabase/supabase-js";
import { createRoot } from "react-dom/client";
import { App } from "./app.tsx";
import { loadConfig } from "./config.ts";
import { SessionGate } from "./session.tsx";
import "./styles.css";

const root = createRoot(document.getElementById("root")!);

loadConfig().then(
  (config) => {
    const supabase = createClient(config.url, config.publishableKey, {
      auth: { persistSession: true, autoRefreshToken: true, detectSessionInUrl: false },
    });
    root.render(
      <SessionGate supabase={supabase} projectUrl={config.url}>
        <App />
      </SessionGate>,
    );
  },
  (err: Error) => {
    root.render(
      <main className="signin" id="main">
        <h1>Sigyl Secrets</h1>
        <div className="alert alert-error" role="alert">The console is not configured: {err.message}</div>
      </main>,
    );
  },
);
