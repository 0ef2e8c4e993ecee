/**
 * The OpenAPI document the function serves: public, valid OpenAPI 3.1 by a real validator,
 * and the same set of routes as the function serves and the README's route tables list, so
 * neither can drift from the code.
 */
import SwaggerParser from "@apidevtools/swagger-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { documentedRoutes } from "../helpers/readme.ts";

const METHODS = ["get", "post", "put", "patch", "delete"];

/** The document's operations as `METHOD /secrets/path`, written as the router and the README write them. */
const described = (doc: any) =>
  Object.entries<Record<string, unknown>>(doc.paths).flatMap(([path, item]) =>
    METHODS.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ":$1").replace(/\/$/, "")}`)
  );

describe("the OpenAPI document", () => {
  let h: Harness;
  let doc: any;
  beforeAll(async () => {
    h = await createHarness();
    const res = await h.request("GET", "/openapi.json");
    expect(res.status).toBe(200);
    doc = res.body;
  });
  afterAll(async () => {
    await h?.close();
  });

  it("is served without a token, as JSON", async () => {
    const res = await h.app.request("/secrets/openapi.json");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect((await res.json()).openapi).toBe("3.1.0");
  });

  it("passes swagger-parser's validation with no error", async () => {
    // validate() dereferences the document it is given: hand it a copy.
    await expect(SwaggerParser.validate(structuredClone(doc))).resolves.toBeTruthy();
  });

  it("takes deployment tokens on the env route only, and no credential on health and itself", () => {
    const security = new Map<string, string[]>();
    for (const [path, item] of Object.entries<any>(doc.paths)) {
      for (const m of METHODS) if (item[m]) security.set(`${m.toUpperCase()} ${path}`, item[m].security.flatMap(Object.keys));
    }
    expect([...security].filter(([, s]) => s.includes("deploymentToken")).map(([op]) => op))
      .toEqual(["GET /secrets/deployments/{id}/env"]);
    expect([...security].filter(([, s]) => s.length === 0).map(([op]) => op).sort())
      .toEqual(["GET /secrets/health", "GET /secrets/openapi.json"]);
    expect(Object.keys(doc.components.securitySchemes).sort())
      .toEqual(["deploymentToken", "serviceRoleApiKey", "serviceRoleBearer", "userJwt"]);
  });

  it("describes exactly the routes the function serves", () => {
    const served = h.app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${r.path.replace(/\/$/, "")}`);
    expect(described(doc).sort()).toEqual([...new Set(served)].sort());
  });

  it("lists exactly the routes of the README's route tables", async () => {
    const documented = await documentedRoutes();
    expect([...new Set(documented)].sort()).toEqual(described(doc).sort());
    expect(documented.length, "each route listed once").toBe(new Set(documented).size);
  });
});
