/**
 * The OpenAPI description, built from the routes' zod schemas (served by ops.ts at /openapi.json), with the
 * response headers the service always sends declared as required, so that a client (and Schemathesis's
 * response_headers_conformance check) can rely on them.
 */
import swagger from "@fastify/swagger";
import { jsonSchemaTransform, jsonSchemaTransformObject } from "fastify-type-provider-zod";
import { TENANT_HEADER } from "../schemas.js";
import { shared } from "./shared.js";

declare module "fastify" {
  interface FastifySchema {
    /** Headers a route's answers always carry, by status: name → description. Documented as required. */
    responseHeaders?: Record<number, Record<string, string>>;
  }
}

/** What the plugins put on every answer, and on every answer of a status. */
const EVERY_RESPONSE: Record<string, string> = {
  "x-request-id": "The request's id (the client's X-Request-Id, or one assigned): quote it when reporting a problem",
};
const BY_STATUS: Record<string, Record<string, string>> = {
  "401": { "www-authenticate": "Bearer, with the reason the token was refused" },
  "429": { "retry-after": "Seconds to wait: until the tenant's rate-limit window resets, or 1 when it has too many requests in flight" },
};

type Transform = typeof jsonSchemaTransform;
type Document = ReturnType<typeof jsonSchemaTransformObject>;
interface Response {
  description?: string;
  content?: Record<string, { schema?: { $ref?: string } }>;
  headers?: Record<string, { required?: boolean; description?: string; schema: unknown }>;
}
interface Components {
  components?: { schemas?: Record<string, unknown> };
  paths?: Record<string, Record<string, { responses?: Record<string, Response> }>>;
}

/**
 * The zod transform, plus each route's responseHeaders (which @fastify/swagger turns into response headers), and
 * X-Tenant-ID on every route whose config says it is tenant-scoped.
 */
const transform: Transform = (route) => {
  const { responseHeaders, ...schema } = route.schema ?? {};
  const result = jsonSchemaTransform({ ...route, schema } as Parameters<Transform>[0]);
  const config = (route as { route?: { config?: { tenantScoped?: boolean } } }).route?.config;
  if (config?.tenantScoped && !schema.hide) {
    (result.schema as Record<string, unknown>).headers = { type: "object", properties: { "x-tenant-id": TENANT_HEADER } };
  }
  const responses = (result.schema as { response?: Record<string, Record<string, unknown>> }).response;
  for (const [status, headers] of Object.entries(responseHeaders ?? {})) {
    const response = responses?.[status];
    if (!response) throw new Error(`${route.url}: responseHeaders for ${status}, which the route does not declare`);
    response.headers = Object.fromEntries(Object.entries(headers).map(([name, description]) => [name, { type: "string", description }]));
  }
  return result;
};

/**
 * Declares the headers every answer (or every answer of a status) carries, marks every declared header required,
 * and describes a success by its body's component (@fastify/swagger says "Default Response").
 */
function withResponseDetails(document: Document): Document {
  const header = (description: string) => ({ description, required: true, schema: { type: "string" } });
  const { components, paths } = document as Components;
  for (const operations of Object.values(paths ?? {})) {
    for (const operation of Object.values(operations)) {
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        const body = Object.values(response.content ?? {})[0]?.schema?.$ref?.split("/").pop();
        const described = (components?.schemas?.[body ?? ""] as { description?: string } | undefined)?.description;
        if (response.description === "Default Response" && described) response.description = described;
        for (const declared of Object.values(response.headers ?? {})) declared.required = true;
        const always = { ...EVERY_RESPONSE, ...BY_STATUS[status] };
        response.headers = { ...Object.fromEntries(Object.entries(always).map(([name, description]) => [name, header(description)])), ...response.headers };
      }
    }
  }
  return document;
}

/**
 * Keeps only the component schemas the operations reference, directly or through another component: the type
 * provider emits each named schema twice, as an input (`TenantInput`) and an output (`Tenant`), and the API takes
 * none of its outputs as input.
 */
function withoutUnusedSchemas(document: Document): Document {
  const { components } = document as Components;
  const schemas = components?.schemas ?? {};
  const referenced = (value: unknown) => [...JSON.stringify(value).matchAll(/"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
  const used = new Set<string>();
  const pending = referenced((document as Components).paths);
  for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
    if (used.has(name)) continue;
    used.add(name);
    pending.push(...referenced(schemas[name]));
  }
  const kept = Object.fromEntries(Object.entries(schemas).filter(([name]) => used.has(name)));
  return { ...document, components: { ...components, schemas: kept } } as Document;
}

export const openapi = shared("openapi", async (app) => {
  await app.register(swagger, {
    openapi: {
      info: { title: "Tenant service", version: "1.0.0", description: "Tenant-isolated API over PostgreSQL/Citus" },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" } } },
      security: [{ bearer: [] }],
    },
    transform,
    // The schemas with an id (Tenant, User, Item, Error, ...) become components, referenced from each operation.
    transformObject: (document) => withResponseDetails(withoutUnusedSchemas(jsonSchemaTransformObject(document))),
  });
});
