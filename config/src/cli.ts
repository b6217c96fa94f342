/** Prints the resolved configuration of one environment (or all): `pnpm --filter @platform/config show production`. */
import { Command } from "commander";
import { main } from "@platform/cli";
import { loadEnvironment } from "./load.js";
import { ENVIRONMENT_NAMES } from "./schema.js";
import { platformNames } from "./names.js";

const program = new Command()
  .name("show")
  .description("print the resolved configuration (and derived names) of the named environments, or all")
  .argument("[environments...]", ENVIRONMENT_NAMES.join(", "))
  .action((requested: string[]) => {
    const names = requested.length > 0 ? requested : [...ENVIRONMENT_NAMES];
    const out = Object.fromEntries(names.map((n) => {
      const config = loadEnvironment(n);
      return [n, { config, names: platformNames(config) }];
    }));
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  });

// A bad environment name or override is a ConfigError: one line naming it, exit 2.
await main("show", program, 2);
