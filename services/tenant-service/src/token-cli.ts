/**
 * Mints a development token signed with AUTH_JWT_SECRET (never valid against Hydra's keys in production):
 *
 *   pnpm --filter tenant-service token --tenant <uuid> --scope "tenant:admin"
 *   pnpm --filter tenant-service token --scope platform:admin
 */
import { Command, InvalidArgumentError } from "commander";
import { SignJWT } from "jose";
import { ServiceConfigSchema } from "./config.js";

const uuid = (value: string): string => {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)) throw new InvalidArgumentError(`must be a tenant uuid (got "${value}")`);
  return value.toLowerCase();
};

const program = new Command()
  .name("token")
  .description("Mint a development JWT for the tenant service")
  .option("--tenant <uuid>", "tenant_id claim", uuid)
  .option("--scope <scopes>", 'space-separated scopes, e.g. "tenant:admin" or "platform:admin"', "")
  .option("--sub <subject>", "sub claim", "dev-user")
  .option("--ttl <seconds>", "lifetime", (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`must be a whole number of seconds (got "${v}")`);
    return n;
  }, 3600)
  .action(async (opts: { tenant?: string; scope: string; sub: string; ttl: number }) => {
    const secret = process.env.AUTH_JWT_SECRET;
    if (!secret || secret.length < 32) {
      console.error("set AUTH_JWT_SECRET (32+ characters) to the same value the service runs with");
      process.exit(2);
    }
    if (!opts.tenant && !opts.scope.split(" ").includes("platform:admin")) {
      console.error('a token needs --tenant <uuid>, unless it is a platform admin\'s (--scope "platform:admin")');
      process.exit(2);
    }
    const token = await new SignJWT({ ...(opts.tenant ? { tenant_id: opts.tenant } : {}), scope: opts.scope })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(opts.sub)
      // The service's own defaults (config.ts), so a token made here for a local run is one the service accepts.
      .setIssuer(ServiceConfigSchema.shape.AUTH_ISSUER.parse(process.env.AUTH_ISSUER))
      .setAudience(ServiceConfigSchema.shape.AUTH_AUDIENCE.parse(process.env.AUTH_AUDIENCE))
      .setIssuedAt()
      .setExpirationTime(`${opts.ttl}s`)
      .sign(new TextEncoder().encode(secret));
    console.log(token);
  });

await program.parseAsync();
