/** Prints the resolved configuration of one environment (or all): `pnpm --filter @platform/config show production`. */
import { ConfigError, loadEnvironment } from "./load.js";
import { ENVIRONMENT_NAMES } from "./schema.js";
import { platformNames } from "./names.js";

const requested = process.argv.slice(2);
const names = requested.length > 0 ? requested : [...ENVIRONMENT_NAMES];
try {
  const out = Object.fromEntries(names.map((n) => {
    const config = loadEnvironment(n);
    return [n, { config, names: platformNames(config) }];
  }));
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  throw error;
}
