/**
 * The typed client (shared/client): its types are what the served document gives, so they
 * cannot drift from the API, and it carries credentials, answers and errors as a caller needs.
 */
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SigylApiError, unwrap } from "../../shared/client/client.ts";
import { schemaSource, servedDocument } from "../../shared/client/generate.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";

describe("the typed client", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("has the types the served document gives (npm run client:generate)", async () => {
    const served = (await h.request("GET", "/openapi.json")).body;
    const committed = await readFile(new URL("../../shared/client/schema.ts", import.meta.url), "utf8");
    expect(await schemaSource(served)).toBe(committed);
    // The generator's own copy of the document, built without a database, is the same one.
    expect(await servedDocument()).toEqual(served);
  });

  it("sends the token, and calls a token function on every request", async () => {
    const alice = await h.user("alice");
    const bob = await h.user("bob");
    let current = alice.token;
    let calls = 0;
    const api = h.client(() => (calls++, current));
    const value = `client-value-${crypto.randomUUID()}`;
    h.remember(value);
    const created = await unwrap(api.POST("/secrets", { body: { name: `CLIENT_${calls}_${Date.now()}`, value } }));
    expect(created.ownerId).toBe(alice.id);
    const read = await unwrap(api.GET("/secrets/{id}/value", { params: { path: { id: created.id } } }));
    expect(read.value).toBe(value);

    current = bob.token;
    const err = await unwrap(api.GET("/secrets/{id}/value", { params: { path: { id: created.id } } })).catch((e) => e);
    expect(err).toBeInstanceOf(SigylApiError);
    expect([err.status, err.code]).toEqual([404, "secret_not_found"]);
    expect(calls).toBe(3);
  });

  it("turns an error answer into SigylApiError with the server's code and the fields at fault", async () => {
    const alice = await h.user("alice");
    const api = h.client(alice.token);
    const err = await unwrap(api.POST("/secrets", { body: { name: "not a valid name", value: "v" } })).catch((e) => e);
    expect(err).toBeInstanceOf(SigylApiError);
    expect(err.status).toBe(400);
    expect(err.code).toBe("invalid_request");
    expect(err.details.map((d: { path: string }) => d.path)).toContain("name");
    // Nothing was stored by the refused call.
    const list = await unwrap(api.GET("/secrets", { params: { query: {} } }));
    expect(list.items).toEqual([]);
  });

  it("without a token sends no Authorization header, and the API refuses it", async () => {
    const err = await unwrap(h.client().GET("/secrets", { params: { query: {} } })).catch((e) => e);
    expect([err.status, err.code]).toEqual([401, "unauthenticated"]);
  });

  it("maps an answer that is not the API's (a gateway's) to unexpected_response", async () => {
    const { createSigylClient } = await import("../../shared/client/client.ts");
    const api = createSigylClient({
      url: "http://gateway.test/functions/v1",
      fetch: () => Promise.resolve(new Response("Bad Gateway", { status: 502, statusText: "Bad Gateway" })),
    });
    const err = await unwrap(api.GET("/secrets/health")).catch((e) => e);
    expect([err.status, err.code]).toEqual([502, "unexpected_response"]);
  });

  it("puts the base URL before the API's paths, and the apikey header when given", async () => {
    const { createSigylClient } = await import("../../shared/client/client.ts");
    const seen: Request[] = [];
    const api = createSigylClient({
      url: "https://ref.supabase.co/functions/v1/",
      token: "tok",
      apikey: "sb_publishable_x",
      fetch: (req) => (seen.push(req), Promise.resolve(Response.json({ success: true, data: { status: "ok" } }))),
    });
    await api.GET("/secrets/health");
    expect(seen[0].url).toBe("https://ref.supabase.co/functions/v1/secrets/health");
    expect(seen[0].headers.get("authorization")).toBe("Bearer tok");
    expect(seen[0].headers.get("apikey")).toBe("sb_publishable_x");
  });
});
