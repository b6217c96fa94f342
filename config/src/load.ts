import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { COMMON_DEFAULTS, ENVIRONMENT_DEFINITIONS, EXAMPLE_TENANT_SERVICE_IMAGE, type EnvironmentInput } from "./environments.js";
import { ENVIRONMENT_NAMES, EnvironmentConfigSchema, type EnvironmentConfig, type EnvironmentName } from "./schema.js";
import { cloudSqlSizingFor, deriveSizing } from "./sizing.js";

/** Where operator overrides are read from when PLATFORM_CONFIG is not set: the repository root. */
export const DEFAULT_OVERRIDE_FILE = resolve(dirname(fileURLToPath(import.meta.url)), "../../platform.config.json");

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  /** Bad input: every platform CLI exits 2 on it (@platform/cli). */
  readonly exitCode = 2;
}

export interface LoadOptions {
  /** Environment variables to read overrides from (default: process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Override file; default PLATFORM_CONFIG, else platform.config.json at the repository root if it exists. */
  readonly overrideFile?: string;
}

/** The environment-variable overrides, per environment: PLATFORM_<ENV>_<NAME>. */
export const ENV_VAR_OVERRIDES = {
  PROJECT_ID: (v: string): EnvironmentInput => ({ gcp: { projectId: v } }),
  REGION: (v: string): EnvironmentInput => ({ gcp: { region: v } }),
  ZONES: (v: string): EnvironmentInput => ({ gcp: { zones: v.split(",").map((z) => z.trim()) } }),
  STATE_BUCKET: (v: string): EnvironmentInput => ({ gcp: { stateBucket: v } }),
  TENANT_TARGET: (v: string, key: string): EnvironmentInput => ({ tenants: { target: wholeNumber(v, key) } }),
  CITUS_WORKERS: (v: string, key: string): EnvironmentInput => ({ citus: { workers: wholeNumber(v, key) } }),
  /** citus or postgres (docs/SCALING.md, "Phase 1"); the schema refuses anything else. */
  DATABASE_ENGINE: (v: string): EnvironmentInput => ({ database: { engine: v.trim() as "citus" | "postgres" } }),
  /** true or false: the Citus cluster beside the postgres engine's Cloud SQL, to move tenants into (docs/SCALING.md, "Phase 2-3"). */
  DATABASE_CITUS_ALONGSIDE: (v: string, key: string): EnvironmentInput => ({ database: { citusAlongside: yesOrNo(v, key) } }),
  /** Set by the release pipeline: registry/repository:tag@sha256:digest. */
  TENANT_SERVICE_IMAGE: (v: string): EnvironmentInput => ({ kubernetes: { images: { tenantService: v } } }),
} as const;

export function envVarName(env: EnvironmentName, name: keyof typeof ENV_VAR_OVERRIDES): string {
  return `PLATFORM_${env.toUpperCase()}_${name}`;
}

export function isEnvironmentName(value: string): value is EnvironmentName {
  return (ENVIRONMENT_NAMES as readonly string[]).includes(value);
}

export function loadEnvironment(name: string, options: LoadOptions = {}): EnvironmentConfig {
  if (!isEnvironmentName(name)) {
    throw new ConfigError(`Unknown environment "${name}": use one of ${ENVIRONMENT_NAMES.join(", ")}.`);
  }
  const env = options.env ?? process.env;
  const fileOverrides = readOverrideFile(options.overrideFile ?? env.PLATFORM_CONFIG ?? DEFAULT_OVERRIDE_FILE, options.overrideFile !== undefined || env.PLATFORM_CONFIG !== undefined);
  const definition = ENVIRONMENT_DEFINITIONS[name];
  const operator = merge(fileOverrides.values[name] ?? {}, envVarOverrides(name, env));
  const input = merge(merge(COMMON_DEFAULTS, definition), operator);

  const tenants = input.tenants?.target;
  const averageDataMb = input.tenants?.averageDataMb;
  const derived = typeof tenants === "number" && Number.isInteger(tenants) && tenants > 0 && typeof averageDataMb === "number"
    ? sizingDefaults(tenants, averageDataMb, input.citus?.workers)
    : {};
  // Precedence: derived sizing < common defaults < the environment's definition < operator overrides.
  const candidate = merge(merge({ name, labels: { environment: name } }, derived), input) as Record<string, unknown>;
  const gcp = (candidate.gcp ?? {}) as Record<string, unknown>;
  const definedGcp = definition.gcp ?? {};
  candidate.gcp = { ...gcp, placeholder: gcp.projectId === definedGcp.projectId || gcp.stateBucket === definedGcp.stateBucket };
  const kubernetes = (candidate.kubernetes ?? {}) as { images?: Record<string, unknown> };
  if (kubernetes.images) kubernetes.images = { ...kubernetes.images, placeholder: kubernetes.images.tenantService === EXAMPLE_TENANT_SERVICE_IMAGE };

  // jitless: zod's fast path compiles a parser per object schema with new Function on first use, which costs more
  // than it saves when each environment is parsed once per process (about 6 ms of every synth, `pnpm bench:synth`).
  const parsed = EnvironmentConfigSchema.safeParse(candidate, { jitless: true });
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const path = issue.path.join(".");
      const got = valueAt(candidate, issue.path);
      return `  - ${path || "(root)"}: ${issue.message}${got === undefined ? "" : ` (got ${JSON.stringify(got)})`}`;
    });
    throw new ConfigError(
      `Invalid configuration for environment "${name}":\n${lines.join("\n")}\n` +
        `Fix it in config/src/environments.ts, or in your override (${fileOverrides.source}, or PLATFORM_${name.toUpperCase()}_* variables).`,
    );
  }
  return parsed.data;
}

export function loadAllEnvironments(options: LoadOptions = {}): EnvironmentConfig[] {
  return ENVIRONMENT_NAMES.map((name) => loadEnvironment(name, options));
}

function sizingDefaults(tenants: number, averageDataMb: number, workers: unknown): EnvironmentInput {
  const sizing = deriveSizing(tenants, averageDataMb, typeof workers === "number" && workers > 0 ? workers : undefined);
  return {
    citus: sizing.citus,
    gke: { nodePool: sizing.gkeNodePool },
    redis: { memorySizeGb: sizing.redisMemorySizeGb },
    database: { cloudSql: cloudSqlSizingFor(tenants, averageDataMb) },
  };
}

function envVarOverrides(name: EnvironmentName, env: Readonly<Record<string, string | undefined>>): EnvironmentInput {
  let result: EnvironmentInput = {};
  for (const [suffix, toInput] of Object.entries(ENV_VAR_OVERRIDES)) {
    const key = envVarName(name, suffix as keyof typeof ENV_VAR_OVERRIDES);
    const value = env[key];
    if (value !== undefined && value !== "") result = merge(result, toInput(value, key));
  }
  return result;
}

function readOverrideFile(path: string, explicit: boolean): { source: string; values: Partial<Record<EnvironmentName, EnvironmentInput>> } {
  const source = path;
  if (!existsSync(path)) {
    if (explicit) throw new ConfigError(`Override file ${path} (from PLATFORM_CONFIG) does not exist. Create it or unset PLATFORM_CONFIG.`);
    return { source: "platform.config.json", values: {} };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new ConfigError(`Override file ${path} is not valid JSON: ${(error as Error).message}. Fix the file; nothing was synthesized.`);
  }
  if (!isPlainObject(parsed)) {
    throw new ConfigError(`Override file ${path} must be a JSON object keyed by environment (${ENVIRONMENT_NAMES.join(", ")}).`);
  }
  for (const [key, value] of Object.entries(parsed)) {
    if (key === "$schema" || key === "$comment") continue;
    if (!isEnvironmentName(key)) {
      throw new ConfigError(`Override file ${path} has a key "${key}" that is not an environment: use ${ENVIRONMENT_NAMES.join(", ")}.`);
    }
    if (!isPlainObject(value)) throw new ConfigError(`Override file ${path}: "${key}" must be an object of overrides.`);
  }
  return { source, values: parsed as Partial<Record<EnvironmentName, EnvironmentInput>> };
}

function wholeNumber(value: string, key: string): number {
  if (!/^\d+$/.test(value.trim())) throw new ConfigError(`${key} must be a whole number (got "${value}").`);
  return Number(value);
}

function yesOrNo(value: string, key: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === "true") return true;
  if (v === "false") return false;
  throw new ConfigError(`${key} must be true or false (got "${value}").`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Deep merge where `over` wins; arrays are replaced, not concatenated. */
export function merge<T>(under: T, over: unknown): T {
  if (!isPlainObject(under) || !isPlainObject(over)) return (over === undefined ? under : over) as T;
  const out: Record<string, unknown> = { ...under };
  for (const [key, value] of Object.entries(over)) out[key] = merge(out[key], value);
  return out as T;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node: unknown = root;
  for (const key of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}
