/** The OpenAPI description, built from the routes' zod schemas (served by ops.ts at /openapi.json). */
import swagger from "@fastify/swagger";
import { jsonSchemaTransform } from "fastify-type-provider-zod";
import { shared } from "./shared.js";

export const openapi = shared("openapi", async (app) => {
  await app.register(swagger, {
    openapi: {
      info: { title: "Tenant service", version: "1.0.0", description: "Tenant-isolated API over PostgreSQL/Citus" },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
});
