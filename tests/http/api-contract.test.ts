/**
 * The check every API suite's answers go through (tests/helpers/api-contract.ts) can fail: an
 * answer the OpenAPI document does not describe — a field too many, an undocumented status,
 * a missing header, another content type, an error code the route does not give — is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApiContract } from "../helpers/api-contract.ts";
import { contractOf, createHarness, type Harness } from "../helpers/harness.ts";

const ID = "5b0f3a52-6f7e-4c1b-9a57-1d2e3f405162";
const NOW = "2026-01-02T03:04:05.000Z";
const secret = {
  id: ID, name: "OPENAI_API_KEY", secretType: "api_key", description: "", tags: [], ownerId: ID, status: "active",
  isActive: true, expiresAt: null, currentVersion: 1, permission: "owner", createdAt: NOW, updatedAt: NOW, deletedAt: null,
};

function answer(status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return {
    status,
    text,
    headers: new Headers({ "content-type": "application/json", "x-request-id": "req-1", ...headers }),
  };
}

describe("the answer contract", () => {
  let h: Harness;
  let contract: ApiContract;
  beforeAll(async () => {
    h = await createHarness();
    contract = await contractOf(h.app);
  });
  afterAll(async () => {
    await h?.close();
  });

  it("takes an answer the document describes", () => {
    expect(() => contract.check("GET", `/secrets/${ID}`, answer(200, { success: true, data: secret }, { etag: '"1"' }))).not.toThrow();
    expect(() => contract.check("GET", `/secrets/${ID}`, answer(404, {
      success: false, error: { code: "secret_not_found", message: "No secret with this id is visible to you." },
    }))).not.toThrow();
  });

  it("refuses a body with a field the schema does not list (a ciphertext column, say)", () => {
    const leaky = answer(200, { success: true, data: { ...secret, ciphertext: "AAAA" } }, { etag: '"1"' });
    expect(() => contract.check("GET", `/secrets/${ID}`, leaky)).toThrow(/breaks GET \/secrets\/\{id\}'s schema for 200/);
  });

  it("refuses a body of the wrong shape or type", () => {
    const wrong = answer(200, { success: true, data: { ...secret, currentVersion: "1" } }, { etag: '"1"' });
    expect(() => contract.check("GET", `/secrets/${ID}`, wrong)).toThrow(/schema/);
    const notEnveloped = answer(200, secret, { etag: '"1"' });
    expect(() => contract.check("GET", `/secrets/${ID}`, notEnveloped)).toThrow(/schema/);
  });

  it("refuses a status the operation does not document", () => {
    expect(() => contract.check("GET", `/secrets/${ID}`, answer(201, { success: true, data: secret }, { etag: '"1"' })))
      .toThrow(/does not describe status 201/);
    expect(() => contract.check("GET", `/secrets/${ID}/versions`, answer(409, {
      success: false, error: { code: "name_taken", message: "taken" },
    }))).toThrow(/does not describe status 409/);
  });

  it("refuses an error code the route does not give, even under a documented status", () => {
    const other = answer(404, { success: false, error: { code: "deployment_not_found", message: "No deployment." } });
    expect(() => contract.check("GET", `/secrets/${ID}`, other)).toThrow(/schema/);
  });

  it("refuses a missing required header, and a meaningful header the operation does not describe", () => {
    expect(() => contract.check("GET", `/secrets/${ID}`, answer(200, { success: true, data: secret })))
      .toThrow(/header etag is required but missing/);
    expect(() => contract.check("GET", `/secrets/${ID}/versions`, answer(200, { success: true, data: [] }, { location: "/x" })))
      .toThrow(/header location is sent but not described/);
  });

  it("refuses another content type", () => {
    const text = answer(200, JSON.stringify({ success: true, data: [] }), { "content-type": "text/plain" });
    expect(() => contract.check("GET", `/secrets/${ID}/versions`, text)).toThrow(/content type "text\/plain"/);
  });

  it("takes dotenv as text/plain on the env route only", () => {
    const dotenv = answer(200, "A=1\n", { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", etag: '"f"' });
    expect(() => contract.check("GET", `/secrets/deployments/${ID}/env?format=dotenv`, dotenv)).not.toThrow();
  });

  it("takes only a catalogued error, at its status, where no operation answers", () => {
    expect(() => contract.check("GET", "/secrets/no/such/route", answer(404, { success: false, error: { code: "not_found", message: "No such route." } })))
      .not.toThrow();
    expect(() => contract.check("GET", "/secrets/no/such/route", answer(404, { success: false, error: { code: "teapot", message: "?" } })))
      .toThrow(/not a catalogued error/);
    expect(() => contract.check("GET", "/secrets/no/such/route", answer(410, { success: false, error: { code: "not_found", message: "?" } })))
      .toThrow(/the catalogue says 404/);
  });
});
