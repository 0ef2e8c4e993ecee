/**
 * The web console in headless Chromium against a real `npm start`, as two people use it:
 * Alice and Bob sign up; Alice creates a secret (a form with bad input sends nothing), reveals
 * it (one audited read, nothing of it left behind after leaving the page), meets a stale
 * edit, shares it with Bob as `use`; Bob cannot see it but binds it in the deployment wizard
 * and validation passes, while an unbound variable is named; the list's filters and pages,
 * the audit viewer and its CSV, deleting and restoring, an ended session, keyboard use and a
 * 360 px screen. Every page is checked with axe and photographed.
 *
 * The platform registers deployments itself (README "Deployments"): here by SQL, on
 * PostgreSQL through the suites' database, on PGlite in the data dir while the server is
 * stopped for a moment (one process per data dir).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ROOT } from "../../scripts/lib/local.ts";
import { unwrap } from "../../shared/client/client.ts";
import type { Database } from "../../shared/db/database.ts";
import { createPgliteDatabase } from "../../shared/db/pglite.ts";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import { describeOrSkip } from "../helpers/skip.ts";
import {
  browserState, buildConsole, chromiumMissing, type ConsoleServer, launchChromium, openPerson, type Person, screenshot,
  seriousViolations, startConsoleServer,
} from "./browser.ts";

const run = Math.random().toString(36).slice(2, 8);
const ALICE = { email: `alice-${run}@example.com`, password: `alice-pw-${run}` };
const BOB = { email: `bob-${run}@example.com`, password: `bob-pw-${run}` };
/** The value Alice stores: it must never be found where the console should not put it. */
const VALUE = `sk-live-${run}-ZXCVBNM0987`;
const SECRET = `OPENAI_API_KEY_${run.toUpperCase()}`;

let server: ConsoleServer;
let browser: Browser;
let alice: Person;
let bob: Person;
let secretId: string;
const deployments: { single: string; double: string } = { single: "", double: "" };
/** Axe's findings per page, asserted at the end so one run reports every page. */
const axeFindings: Record<string, string[]> = {};

/** The person at the keyboard: their window in front (a page left in the background can stall). */
async function focus(person: Person): Promise<Page> {
  await person.page.bringToFront();
  return person.page;
}

/** Screenshot and axe check of the page as it stands. */
async function visit(page: Page, name: string) {
  await page.waitForLoadState("networkidle");
  axeFindings[name] = await seriousViolations(page);
  await screenshot(page, name);
}

async function signUp(person: Person, who: { email: string; password: string }) {
  const { page } = person;
  await page.goto("/");
  await page.getByRole("button", { name: "Create account" }).first().click();
  await page.getByLabel("Email").fill(who.email);
  await page.getByLabel("Password").fill(who.password);
  await page.locator("form").getByRole("button", { name: "Create account" }).click();
  await page.getByRole("heading", { name: "Secrets", exact: true }).waitFor();
}

const apiCalls = (p: Person, method: string, path: RegExp) =>
  p.requests.filter((r) => r.method === method && path.test(new URL(r.url).pathname));

/** The platform registering an MCP server of `email` that requires `env`. */
async function registerDeployment(db: Database, email: string, name: string, env: string[]): Promise<string> {
  const [row] = await db.query<{ id: string }>(
    `insert into public.deployments (user_id, name, required_env) select id, $2, $3 from auth.users where email = $1 returning id`,
    [email, name, env]);
  return row.id;
}

beforeAll(async () => {
  if (chromiumMissing) return;
  buildConsole();
  server = await startConsoleServer();
  browser = await launchChromium();
  alice = await openPerson(browser, server.origin);
  bob = await openPerson(browser, server.origin);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

describeOrSkip("the web console in a browser", chromiumMissing, () => {
  it("is served at / with a strict Content-Security-Policy, no inline script and its config.json", async () => {
    const res = await fetch(`${server.origin}/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
    const html = await res.text();
    expect([...html.matchAll(/<script\b([^>]*)>/g)].every((m) => /\bsrc=/.test(m[1]))).toBe(true);
    const config = await (await fetch(`${server.origin}/config.json`)).json();
    expect(config).toEqual({ url: server.origin, publishableKey: expect.stringMatching(/^sb_publishable_/) });
    expect((await fetch(`${server.origin}/assets/../../package.json`)).status).toBe(404);
    // npm start names the console's URL right after the API's.
    expect(server.server.output()).toContain(`sigyl: serving ${server.origin}/functions/v1/secrets\nsigyl: web console: ${server.origin}/\n`);
  });

  it("lets Alice and Bob sign up, and a session survives a reload and a server restart", async () => {
    await alice.page.goto("/");
    await visit(alice.page, "sign-in");
    await signUp(alice, ALICE);
    await alice.page.getByText("No secrets yet.").waitFor();
    await visit(alice.page, "secrets-empty");
    await signUp(bob, BOB);

    // The platform registers Bob's two MCP servers.
    const register = async (db: Database) => {
      deployments.single = await registerDeployment(db, BOB.email, "mcp-openai", [SECRET]);
      deployments.double = await registerDeployment(db, BOB.email, "mcp-openai-and-db", [SECRET, "DATABASE_URL"]);
    };
    if (process.env.DATABASE_URL) {
      const db = createPostgresDatabase(process.env.DATABASE_URL, { max: 1 });
      await register(db).finally(() => db.close());
    } else {
      await server.restart(async () => {
        const db = await createPgliteDatabase({ dataDir: server.dataDir });
        await register(db).finally(() => db.close());
      });
    }

    for (const person of [alice, bob]) {
      await person.page.reload();
      await person.page.getByRole("heading", { name: "Secrets", exact: true }).waitFor();
    }
    expect(await alice.page.getByText(ALICE.email).isVisible()).toBe(true);
    expect(await alice.page.getByRole("button", { name: "Sign in" }).count()).toBe(0);
  });

  it("shows field errors as Alice types and sends nothing invalid; a valid form creates the secret", async () => {
    const page = await focus(alice);
    await page.goto("/#/secrets/new");
    await page.getByLabel("Name").fill("9 lives");
    await page.getByLabel("Tags").fill(Array.from({ length: 21 }, (_, i) => `t${i}`).join(","));
    await page.getByLabel("Expires at").fill("2020-01-01T10:00");
    await expect.poll(() => page.locator(".field-error").allInnerTexts()).toEqual([
      "Start with a letter or _, then letters, digits, _ . - only.",
      "At most 20 tags.",
      "Must be in the future.",
    ]);
    expect(await page.getByLabel("Name").getAttribute("aria-invalid")).toBe("true");
    await page.getByRole("button", { name: "Create secret" }).click();
    await page.getByText("Correct the fields marked above; nothing was sent.").waitFor();
    await visit(page, "secret-form-errors");
    expect(apiCalls(alice, "POST", /\/functions\/v1\/secrets$/)).toEqual([]);

    await page.getByLabel("Name").fill(SECRET);
    await page.getByLabel("Value", { exact: true }).fill(VALUE);
    await page.getByLabel("Tags").fill("prod, openai");
    await page.getByLabel("Expires at").fill("");
    await page.getByLabel("Type").selectOption("api_key");
    await page.getByRole("button", { name: "Create secret" }).click();
    await page.getByRole("heading", { name: SECRET }).waitFor();
    const posts = apiCalls(alice, "POST", /\/functions\/v1\/secrets$/);
    expect(posts).toHaveLength(1);
    expect(JSON.parse(posts[0].body!)).toEqual({
      name: SECRET, value: VALUE, secretType: "api_key", description: "", tags: ["prod", "openai"], expiresAt: null,
    });
    secretId = new URL(page.url()).hash.split("/")[2];
    expect(secretId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("maps what the server still refuses onto the field: a name already taken", async () => {
    const page = await focus(alice);
    await page.goto("/#/secrets/new");
    await page.getByLabel("Name").fill(SECRET);
    await page.getByLabel("Value", { exact: true }).fill("another value");
    await page.getByRole("button", { name: "Create secret" }).click();
    await page.locator(".field-invalid", { hasText: "Name" }).getByText("Another live secret of yours has this name.").waitFor();
    expect(page.url()).toMatch(/#\/secrets\/new$/);
  });

  it("reveals the value only when asked, in one audited read, and leaves nothing of it behind", async () => {
    const page = await focus(alice);
    await page.goto(`/#/secrets/${secretId}`);
    await page.getByRole("button", { name: "Reveal" }).waitFor();
    expect(await page.content()).not.toContain(VALUE);
    expect(apiCalls(alice, "GET", /\/value$/)).toEqual([]);
    await visit(page, "secret-masked");

    await page.getByRole("button", { name: "Reveal" }).click();
    expect(await page.getByLabel("Secret value").innerText()).toBe(VALUE);
    await page.getByRole("button", { name: "Copy" }).click();
    await page.getByText("Copied to the clipboard.").waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(VALUE);
    expect(apiCalls(alice, "GET", /\/value$/)).toHaveLength(1);

    // The secret's audit trail, refreshed after the read: exactly one `accessed` row.
    const trail = page.locator("section.card", { has: page.getByRole("heading", { name: "Audit trail" }) });
    await expect.poll(() => trail.locator("tr[data-action=accessed]").count()).toBe(1);
    await trail.getByLabel("Action").selectOption("accessed");
    await expect.poll(() => trail.locator("tbody tr").count()).toBe(1);
    expect(await trail.locator("tbody tr").first().innerText()).toMatch(/accessed[\s\S]*you[\s\S]*127\.0\.0\.1[\s\S]*HeadlessChrome/);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.getByLabel("Secret value").evaluate((el) => (el.textContent = "•••• (hidden for the screenshot)"));
    await visit(page, "secret-revealed");

    // Hidden again, then the page left: the value is nowhere the browser keeps things.
    await page.getByRole("button", { name: "Hide" }).click();
    expect(await page.content()).not.toContain(VALUE);
    await page.getByRole("button", { name: "Reveal" }).click();
    await page.getByLabel("Secret value").waitFor();
    await page.getByRole("link", { name: "Secrets", exact: true }).click();
    await page.getByRole("link", { name: SECRET }).waitFor();
    const state = await browserState(page);
    expect(state).toContain("service workers: 0");
    expect(state).toContain(SECRET); // the list is in the DOM: the check sees what the page holds
    expect(state).not.toContain(VALUE);
    expect(alice.console.join("\n")).not.toContain(VALUE);
    expect(alice.requests.some((r) => r.url.includes(VALUE))).toBe(false);
  });

  it("hides a revealed value by itself after 30 seconds", async () => {
    const page = await focus(alice);
    await page.clock.install();
    await page.goto(`/#/secrets/${secretId}`);
    await page.getByRole("button", { name: "Reveal" }).click();
    await page.getByLabel("Secret value").waitFor();
    await page.clock.runFor(31_000);
    await page.getByRole("button", { name: "Reveal" }).waitFor();
    expect(await page.content()).not.toContain(VALUE);
  });

  it("shows a stale new version as a conflict, saves nothing, and offers a reload", async () => {
    const page = await focus(alice);
    await page.goto(`/#/secrets/${secretId}`);
    await page.getByLabel("New value").waitFor();
    const current = await unwrap((await alice.api()).GET("/secrets/{id}", { params: { path: { id: secretId } } }));
    // Someone else saves a version meanwhile.
    await unwrap((await alice.api()).PUT("/secrets/{id}/value", {
      params: { path: { id: secretId } }, body: { value: `${VALUE}-other`, expectedVersion: current.currentVersion },
    }));
    await page.getByLabel("New value").fill(`${VALUE}-mine`);
    await page.getByRole("button", { name: "Save new version" }).click();
    await page.getByText(/Someone saved a newer version after you opened this page/).waitFor();
    await visit(page, "secret-conflict");
    const after = await unwrap((await alice.api()).GET("/secrets/{id}", { params: { path: { id: secretId } } }));
    expect(after.currentVersion).toBe(current.currentVersion + 1);

    await page.getByRole("button", { name: "Reload the secret" }).click();
    await page.getByText(`Replaces version ${after.currentVersion};`).waitFor();
    await page.getByRole("button", { name: "Save new version" }).click();
    await page.getByText(`Saved as version ${after.currentVersion + 1}.`).waitFor();
    // The page reloads the secret and its history after a save; a roll-back sent before the
    // secret's new version arrives would rightly be a conflict.
    await page.getByText(`Replaces version ${after.currentVersion + 1};`).waitFor();
    await page.getByRole("cell", { name: `${after.currentVersion + 1} (current)` }).waitFor();

    // Roll back to version 1: a new version holding the first value.
    await page.getByRole("button", { name: "Roll back to version 1" }).click();
    await page.getByRole("cell", { name: "roll-back to 1" }).waitFor();
    const rolled = await unwrap((await alice.api()).GET("/secrets/{id}/value", { params: { path: { id: secretId } } }));
    expect(rolled).toMatchObject({ version: after.currentVersion + 2, value: VALUE });
  });

  it("shares the secret with Bob as use, the level said in words", async () => {
    const page = await focus(alice);
    await page.goto(`/#/secrets/${secretId}`);
    await page.getByText("use: can deploy with it, never see it").waitFor();
    await page.getByLabel("Share with (email)").fill(BOB.email);
    await page.getByRole("radio", { name: /use: can deploy with it, never see it/ }).check();
    await page.getByRole("button", { name: "Share", exact: true }).click();
    await page.getByText(`Shared with ${BOB.email} as use.`).waitFor();
    expect(await page.getByLabel(`Access of ${BOB.email}`, { exact: true }).inputValue()).toBe("use");
    await visit(page, "secret-sharing");
  });

  it("lets Bob see the shared secret at use, without any way to reveal it", async () => {
    const page = await focus(bob);
    await page.goto("/#/activity");
    await page.getByRole("heading", { name: "My activity" }).waitFor();
    await page.getByRole("link", { name: "Secrets", exact: true }).click();
    const row = page.getByRole("row", { name: new RegExp(SECRET) });
    await row.waitFor();
    expect(await row.getByRole("cell", { name: "use", exact: true }).count()).toBe(1);
    await row.getByRole("link", { name: SECRET }).click();
    await page.getByText("you can bind this secret to your deployments, which receive its value, but you cannot see it").waitFor();
    expect(await page.getByRole("button", { name: "Reveal" }).count()).toBe(0);
    expect(await page.getByRole("heading", { name: "Audit trail" }).count()).toBe(0);
    await visit(page, "secret-use-level");
    expect(apiCalls(bob, "GET", /\/value$/)).toEqual([]);
    // And the API agrees: use never reads the value.
    const { response } = await (await bob.api()).GET("/secrets/{id}/value", { params: { path: { id: secretId } } });
    expect(response.status).toBe(403);
  });

  it("lets Bob bind it in the deployment wizard, and validation passes", async () => {
    // Alice has no deployment: Bob's are not hers to see.
    const alicePage = await focus(alice);
    await alicePage.goto("/#/deployments");
    await alicePage.getByText("No deployments yet.").waitFor();

    // Bob finds his in the list, with what each still needs, and opens one.
    const page = await focus(bob);
    await page.goto("/#/deployments");
    const row = (name: string) => page.locator("table.deployments tr", { has: page.getByRole("link", { name, exact: true }) });
    await row("mcp-openai").waitFor();
    const toBind = (name: string) => row(name).getByRole("list", { name: `Env vars ${name} still needs bound` }).getByRole("listitem").allInnerTexts();
    expect(await toBind("mcp-openai")).toEqual([SECRET]);
    expect(await toBind("mcp-openai-and-db")).toEqual(["DATABASE_URL", SECRET]);
    await visit(page, "deployments-list");
    await page.getByRole("link", { name: "mcp-openai", exact: true }).click();
    await page.getByRole("heading", { name: "mcp-openai" }).waitFor();
    expect(page.url()).toContain(`#/deployments/${deployments.single}`);
    const env = page.locator(`fieldset[data-env="${SECRET}"]`);
    expect(await env.locator(".badge").innerText()).toBe("missing");
    await env.getByLabel(`Secret for ${SECRET}`).selectOption({ label: `${SECRET} (shared: use)` });
    expect(await env.getByLabel(`Pin a version of ${SECRET} (optional)`).isDisabled()).toBe(true);
    await page.getByRole("button", { name: "Save and validate" }).click();
    await page.getByText("Validation passed: this deployment can deploy.").waitFor();
    expect(await env.locator(".badge").innerText()).toBe("bound");
    await visit(page, "deployment-valid");
    const puts = apiCalls(bob, "PUT", /\/deployments\/[^/]+\/secrets$/);
    expect(puts.map((p) => JSON.parse(p.body!))).toEqual([{ bindings: [{ envName: SECRET, secretId }] }]);
    // Back in the list, nothing is left to bind for it.
    await page.goto("/#/deployments");
    await row("mcp-openai").waitFor();
    expect(await row("mcp-openai").locator('td[data-label="Still to bind"]').innerText()).toBe("nothing");
    expect(await row("mcp-openai").locator('td[data-label="Bound"]').innerText()).toBe("1");
  });

  it("names an unbound required variable as a problem, next to it", async () => {
    const page = await focus(bob);
    await page.goto(`/#/deployments/${deployments.double}`);
    await page.getByRole("heading", { name: "mcp-openai-and-db" }).waitFor();
    await page.getByLabel(`Secret for ${SECRET}`).selectOption({ label: `${SECRET} (shared: use)` });
    await page.getByRole("button", { name: "Save and validate" }).click();
    await page.getByText("Validation found 1 problem: DATABASE_URL.").waitFor();
    const db = page.locator('fieldset[data-env="DATABASE_URL"]');
    expect(await db.getByRole("list", { name: "Problems of DATABASE_URL" }).innerText()).toBe("DATABASE_URL: required but not bound");
    expect(await db.locator(".badge").innerText()).toBe("missing");
    expect(await page.locator(`fieldset[data-env="${SECRET}"] .problems`).count()).toBe(0);
    await visit(page, "deployment-problem");
  });

  it("returns an ended session to sign-in, and signing in again returns to the same page", async () => {
    const page = await focus(bob);
    const path = `/#/deployments/${deployments.double}`;
    // The session ends elsewhere (signed out everywhere), and the token in this browser expires.
    const stored = await page.evaluate(() => {
      const key = Object.keys(localStorage).find((k) => /^sb-.*-auth-token$/.test(k))!;
      return { key, session: JSON.parse(localStorage.getItem(key)!) };
    });
    const out = await fetch(`${server.origin}/auth/v1/logout?scope=global`, {
      method: "POST", headers: { apikey: (await (await fetch(`${server.origin}/config.json`)).json()).publishableKey, authorization: `Bearer ${stored.session.access_token}` },
    });
    expect(out.status).toBe(204);
    await page.evaluate(({ key, session }) => localStorage.setItem(key, JSON.stringify({ ...session, expires_at: Math.floor(Date.now() / 1000) - 60 })), stored);
    await page.reload();
    await page.getByRole("heading", { name: "Sign in", exact: true }).waitFor();
    expect(page.url()).toBe(`${server.origin}${path}`);
    await page.getByLabel("Email").fill(BOB.email);
    await page.getByLabel("Password").fill(BOB.password);
    await page.locator("form").getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "mcp-openai-and-db" }).waitFor();
    expect(page.url()).toBe(`${server.origin}${path}`);
  });

  it("lists secrets with search, type, tag and expiry filters, expiry badges and pages", async () => {
    const api = await alice.api();
    const soon = new Date(Date.now() + 2 * 86_400_000).toISOString();
    await unwrap(api.POST("/secrets", { body: { name: `DB_URL_${run}`, value: "postgres://u:p@h/db", secretType: "database_url", tags: ["prod"], expiresAt: soon } }));
    for (let i = 0; i < 25; i++) {
      await unwrap(api.POST("/secrets", { body: { name: `ZZ_FILLER_${String(i).padStart(2, "0")}`, value: `filler-${i}` } }));
    }
    const page = await focus(alice);
    await page.goto("/#/secrets");
    const rows = page.locator("table.secrets tbody tr");
    await expect.poll(() => rows.count()).toBe(25);
    await page.getByRole("button", { name: "Next page" }).click();
    await expect.poll(() => rows.count()).toBe(2);
    expect(await rows.last().innerText()).toContain("ZZ_FILLER_24");
    await page.getByRole("button", { name: "Previous page" }).click();
    await expect.poll(() => rows.first().innerText()).toContain(`DB_URL_${run}`);
    expect(await rows.first().locator(".badge-soon").innerText()).toMatch(/^expires in (4[0-9]|5[0-9]) h$/);
    await visit(page, "secrets-list");

    await page.getByLabel("Type").selectOption("database_url");
    await expect.poll(() => rows.count()).toBe(1);
    await page.getByLabel("Type").selectOption("");
    await page.getByLabel("Expiring within").selectOption("7d");
    await expect.poll(() => rows.allInnerTexts()).toEqual([expect.stringContaining(`DB_URL_${run}`)]);
    await page.getByLabel("Expiring within").selectOption("");
    await page.getByLabel("Tag").fill("openai");
    await expect.poll(() => rows.allInnerTexts()).toEqual([expect.stringContaining(SECRET)]);
    await page.getByLabel("Tag").fill("");
    await page.getByLabel("Name starts with").fill("ZZ_FILLER_1");
    await expect.poll(() => rows.count()).toBe(10);
    await page.getByLabel("Name starts with").fill("NOTHING_LIKE_IT");
    await page.getByText("No secret matches these filters.").waitFor();
  });

  it("shows my activity with action and date filters, and downloads the filtered view as CSV", async () => {
    const page = await focus(alice);
    await page.goto("/#/activity");
    await page.getByRole("heading", { name: "My activity" }).waitFor();
    await page.locator("tbody tr[data-action=created]", { hasText: `DB_URL_${run}` }).waitFor();
    await page.getByLabel("Action").selectOption("accessed");
    await expect.poll(async () => new Set(await page.locator("tbody tr").evaluateAll((r) => r.map((e) => e.getAttribute("data-action")))))
      .toEqual(new Set(["accessed"]));
    const shown = await page.locator("tbody tr").count();
    expect(shown).toBeGreaterThanOrEqual(3);
    await visit(page, "my-activity");
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download CSV" }).click()]);
    const csv = await readFile((await download.path())!, "utf8");
    const lines = csv.trim().split("\r\n");
    expect(lines[0]).toBe("createdAt,action,outcome,secretId,secretName,version,actorType,actorId,deploymentId,ip,userAgent,requestId");
    expect(lines).toHaveLength(shown + 1);
    expect(lines.slice(1).every((l) => l.split(",")[1] === "accessed")).toBe(true);
    expect(csv).not.toContain(VALUE);

    const tomorrow = new Date(Date.now() + 86_400_000);
    const day = `${tomorrow.getFullYear()}-${String(tomorrow.getMonth() + 1).padStart(2, "0")}-${String(tomorrow.getDate()).padStart(2, "0")}`;
    await page.getByLabel("From (day)").fill(day);
    await page.getByText("No event matches.").waitFor();
  });

  it("deletes a secret, shows it among the deleted, and restores it", async () => {
    const page = await focus(alice);
    const name = `ZZ_FILLER_00`;
    await page.goto("/#/secrets");
    await page.getByLabel("Name starts with").fill(name);
    await page.getByRole("link", { name }).click();
    await page.getByRole("button", { name: "Delete…" }).click();
    await page.getByRole("button", { name: `Delete ${name} now` }).click();
    await page.getByRole("heading", { name: "Deleted secrets" }).waitFor();
    const row = page.getByRole("row", { name: new RegExp(name) });
    await row.waitFor();
    await visit(page, "deleted-secrets");
    await row.getByRole("button", { name: `Restore ${name}` }).click();
    await page.getByText(`${name} is restored.`).waitFor();
    await expect.poll(() => page.getByRole("row", { name: new RegExp(name) }).count()).toBe(0);
    await page.goto("/#/secrets");
    await page.getByLabel("Name starts with").fill(name);
    await page.getByRole("link", { name }).waitFor();
  });

  it("can be used with the keyboard alone, with a visible focus", async () => {
    const page = await focus(alice);
    await page.goto("/#/secrets");
    await page.getByRole("heading", { name: "Secrets", exact: true }).waitFor();
    let outline = "";
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press("Tab");
      const focused = await page.evaluate(() => {
        const el = document.activeElement as HTMLElement;
        return { text: el.textContent, style: getComputedStyle(el).outlineStyle, tag: el.tagName };
      });
      if (focused.tag === "A" && focused.text === "New secret") {
        outline = focused.style;
        break;
      }
    }
    expect(outline).toBe("solid");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "New secret" }).waitFor();
  });

  it("works on a 360 px wide screen with no sideways scrolling", async () => {
    const narrow = await openPerson(browser, server.origin, { width: 360, height: 740 });
    try {
      await narrow.page.goto("/");
      await narrow.page.getByLabel("Email").fill(ALICE.email);
      await narrow.page.getByLabel("Password").fill(ALICE.password);
      await narrow.page.locator("form").getByRole("button", { name: "Sign in" }).click();
      for (const [path, name] of [["/#/secrets", "narrow-secrets"], [`/#/secrets/${secretId}`, "narrow-secret"]]) {
        await narrow.page.goto(path);
        await narrow.page.locator("main h1").first().waitFor();
        await narrow.page.waitForLoadState("networkidle");
        expect(await narrow.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
        await visit(narrow.page, name);
      }
    } finally {
      await narrow.context.close();
    }
  });

  it("has no serious or critical axe violation on any page, and no CSP violation or page error", () => {
    expect(Object.keys(axeFindings).length).toBeGreaterThanOrEqual(12);
    expect(Object.fromEntries(Object.entries(axeFindings).filter(([, v]) => v.length > 0))).toEqual({});
    const problems = [...alice.console, ...bob.console].filter((l) => /Content Security Policy|pageerror/i.test(l));
    expect(problems).toEqual([]);
  });

  it("keeps the initial JavaScript within 150 kB gzip, as the build reports", async () => {
    const report = JSON.parse(await readFile(join(ROOT, "web", "dist", "build-report.json"), "utf8"));
    const { initialScripts } = await import("../../web/build.mjs");
    const scripts = await initialScripts();
    expect(report.scripts).toEqual(scripts);
    expect(scripts.length).toBeGreaterThan(0);
    const total = scripts.reduce((n: number, s: { gzip: number }) => n + s.gzip, 0);
    expect(total).toBe(report.initialJsGzipBytes);
    expect(total).toBeLessThanOrEqual(150 * 1024);
  });
});
