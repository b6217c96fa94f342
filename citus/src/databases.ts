/**
 * The databases a deployment holds tenants in, named once for the service, the worker and tenantctl (issue 25).
 *
 *   DATABASE_URL                 the home database: the tenant registry (platform.tenants, tenant_placements), the
 *                                job queue, and the rows of every tenant with no placement row. Its name is `home`.
 *   DATABASE_URL_<NAME>          another database tenants can be placed in, e.g. DATABASE_URL_CITUS → `citus`
 *   DATABASE_PASSWORD_FILE[_<NAME>], DATABASE_CA_FILE[_<NAME>]
 *                                its password and CA as mounted files, as for the home database
 *
 * A placement (platform.tenant_placements.database) names one of these; a name the process was not given is an
 * error the request reports (503), never a silent fallback to the home database.
 */
export const HOME_DATABASE = "home";

/** The names a placement can hold (the CHECK in migration 0012). */
export const DATABASE_NAME_PATTERN = /^[a-z][a-z0-9_]{0,31}$/;

export interface DatabaseEndpoint {
  readonly name: string;
  readonly url: string;
  readonly passwordFile?: string;
  readonly caFile?: string;
}

export class DatabaseEnvError extends Error {
  override readonly name = "DatabaseEnvError";
}

/**
 * Every database named in `env`, the home one first. Throws, naming the variable and what to do, on a name a
 * placement could not hold or a URL that is not postgresql://.
 */
export function databasesFromEnv(env: Record<string, string | undefined>): DatabaseEndpoint[] {
  const endpoints: DatabaseEndpoint[] = [];
  const add = (name: string, suffix: string) => {
    const variable = `DATABASE_URL${suffix}`;
    const url = env[variable]!;
    if (!/^postgres(ql)?:\/\//.test(url)) throw new DatabaseEnvError(`${variable} must be a postgresql:// URL (got "${url.slice(0, 40)}")`);
    const endpoint: DatabaseEndpoint = { name, url };
    const passwordFile = env[`DATABASE_PASSWORD_FILE${suffix}`] || undefined;
    const caFile = env[`DATABASE_CA_FILE${suffix}`] || undefined;
    endpoints.push({ ...endpoint, ...(passwordFile ? { passwordFile } : {}), ...(caFile ? { caFile } : {}) });
  };
  if (env.DATABASE_URL) add(HOME_DATABASE, "");
  for (const variable of Object.keys(env).sort()) {
    const match = /^DATABASE_URL_(.+)$/.exec(variable);
    if (!match || !env[variable]) continue;
    const name = match[1]!.toLowerCase();
    if (!DATABASE_NAME_PATTERN.test(name) || name === HOME_DATABASE) {
      throw new DatabaseEnvError(`${variable}: "${name}" cannot name a database (a lowercase letter, then letters, digits or _, at most 32, and not "${HOME_DATABASE}"); rename the variable, e.g. DATABASE_URL_CITUS`);
    }
    add(name, `_${match[1]}`);
  }
  return endpoints;
}
