/**
 * The console's two settings, read at run time from `config.json` beside index.html (`npm
 * start` serves it; a static host gets one written by its operator), so one build serves any
 * project and no inline script is needed.
 */
export interface ConsoleConfig {
  /** The Supabase project URL: `https://<ref>.supabase.co`, or `http://127.0.0.1:54321` locally. */
  url: string;
  /** The project's publishable key (`sb_publishable_…`, or the legacy anon key). */
  publishableKey: string;
}

export async function loadConfig(): Promise<ConsoleConfig> {
  const res = await fetch("config.json", { cache: "no-store" });
  if (!res.ok) throw new Error(`config.json: HTTP ${res.status}`);
  const body = await res.json() as Partial<ConsoleConfig>;
  if (typeof body.url !== "string" || !/^https?:\/\//.test(body.url)) throw new Error("config.json: url must be the project's http(s) URL");
  if (typeof body.publishableKey !== "string" || body.publishableKey === "") throw new Error("config.json: publishableKey is missing");
  return { url: body.url.replace(/\/+$/, ""), publishableKey: body.publishableKey };
}
