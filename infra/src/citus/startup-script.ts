import { readFileSync } from "node:fs";
import { DATABASE_ROLES } from "@platform/config";
import { POSTGRES_EXPORTER_PORT, postgresExporterQueries } from "@platform/monitoring/exporter-queries";
import { CITUS_VM_PATHS, citusPatroniConfig } from "./patroni-vm.js";

export type CitusBootstrapRole = "coordinator" | "worker";

/** What one Citus VM needs to know at boot. Everything here ends up in instance metadata: no secrets. */
export interface CitusBootstrapProps {
  /** The group this VM is a member of: the coordinator's (0) or a worker's. Every member of a group is alike. */
  readonly role: CitusBootstrapRole;
  /** This VM's own DNS name. */
  readonly nodeHost: string;
  /** This VM's instance name: its Patroni member name. */
  readonly memberName: string;
  /** The Citus group (0 the coordinator). */
  readonly group: number;
  /**
   * The one VM that generates every database secret and the CA on its first boot (the coordinator group's first
   * member); the others wait for them.
   */
  readonly generatesSecrets: boolean;
  /** Names the server certificate carries: its own, and on the coordinator's members the load balancer's name. */
  readonly certificateHosts: readonly string[];
  readonly prefix: string;
  readonly projectId: string;
  readonly postgresMajor: number;
  readonly citusVersion: string;
  readonly port: number;
  readonly database: string;
  readonly shardCount: number;
  /** max_connections of this group. */
  readonly maxConnections: number;
  /** pgBackRest stanza: one per group, shared by its members (only the leader archives and backs up). */
  readonly stanza: string;
  readonly backupBucket: string;
  readonly fullBackupRetention: number;
  /** Coordinator nodes: minutes between cluster-wide restore points. */
  readonly restorePointIntervalMinutes: number;
  /** Cap on WAL a replication slot may hold back, e.g. "50GB". */
  readonly maxSlotWalKeepSize: string;
  /** Ranges allowed to connect to the application database (cluster nodes, pods, database subnet). */
  readonly clientCidrs: readonly string[];
  /** The database subnet: the only source for superuser and replication connections. */
  readonly dataCidr: string;
  readonly patroni: {
    readonly scope: string;
    /** etcd members, host:port. */
    readonly etcdHosts: readonly string[];
    readonly restApiPort: number;
    readonly synchronous: boolean;
    readonly watchdog: "required" | "automatic" | "off";
  };
  readonly secrets: {
    readonly superuser: string;
    readonly replication: string;
    readonly migrator: string;
    readonly app: string;
    readonly caKey: string;
    readonly caCert: string;
    readonly hydraDbPassword: string;
    readonly hydraSystemSecret: string;
    readonly grafanaAdminPassword: string;
    readonly etcdRootPassword: string;
    readonly etcdPatroniPassword: string;
    readonly patroniRestApiPassword: string;
  };
}

/**
 * The bootstrap's sources, in the order the startup script carries them: the libraries (one per concern, common
 * first: it sets the shell options and the paths the others use), the citus-* programs, and the main script last.
 */
const BOOTSTRAP_DIR = new URL("./bootstrap/", import.meta.url);
const LIBRARIES = ["common", "paths", "secrets", "disk-packages", "tls", "patroni", "roles", "exporters", "backups"] as const;
/** The commands the bootstrap installs on each VM, each a real file in bootstrap/bin/. */
export const CITUS_PROGRAMS = ["citus-backup-metrics", "citus-is-leader", "citus-restore-point", "citus-restore-to"] as const;

/** One source file of the bootstrap, by its path in the repository, and the text the startup script carries of it. */
export interface BootstrapSource {
  readonly path: string;
  readonly text: string;
}

/** A library of the Citus bootstrap by name (lib/<name>.sh), as the startup scripts carry it: the etcd VMs share some. */
export function bootstrapLibrary(name: string): BootstrapSource {
  return withoutShellDirective(read(`lib/${name}.sh`));
}

const read = (relative: string): BootstrapSource => ({
  path: `infra/src/citus/bootstrap/${relative}`,
  text: readFileSync(new URL(relative, BOOTSTRAP_DIR), "utf8"),
});

/** A marker for editors and the file's own shellcheck run; in the assembled script it would repeat mid-file. */
const withoutShellDirective = (s: BootstrapSource): BootstrapSource => ({ ...s, text: s.text.replace(/^# shellcheck shell=bash\n/, "") });

export const BOOTSTRAP_LIBRARIES: readonly BootstrapSource[] = LIBRARIES.map((name) => withoutShellDirective(read(`lib/${name}.sh`)));
export const BOOTSTRAP_PROGRAMS: readonly BootstrapSource[] = CITUS_PROGRAMS.map((name) => read(`bin/${name}`));
export const BOOTSTRAP_MAIN: BootstrapSource = withoutShellDirective(read("main.sh"));

const PROGRAM_END = "CITUS_PROGRAM_END";

/**
 * citus_program NAME prints a program's file. Each is a quoted here-document, so nothing in it expands when the
 * startup script runs; install_program (lib/common.sh) writes it with the node's settings after its shebang.
 */
function programsFunction(): string {
  const cases = BOOTSTRAP_PROGRAMS.map((program) => {
    const name = program.path.split("/").pop()!;
    if (program.text.split("\n").includes(PROGRAM_END)) {
      throw new Error(`${program.path} has a line "${PROGRAM_END}", which would end its here-document in the startup script: rename that line`);
    }
    if (!program.text.startsWith("#!/bin/bash\n")) throw new Error(`${program.path} must start with #!/bin/bash: install_program keeps its first line as the shebang`);
    return `    ${name}) cat <<'${PROGRAM_END}'\n${program.text.endsWith("\n") ? program.text : `${program.text}\n`}${PROGRAM_END}\n      ;;`;
  });
  return [
    "# The citus-* programs (infra/src/citus/bootstrap/bin), carried verbatim for install_program.",
    "citus_program() {",
    '  case "$1" in',
    ...cases,
    '    *) die "no program $1 in this startup script" ;;',
    "  esac",
    "}",
    "",
  ].join("\n");
}

/** The bootstrap body every node shares: libraries, programs, main. */
const BODY = [...BOOTSTRAP_LIBRARIES.map((s) => s.text), programsFunction(), BOOTSTRAP_MAIN.text].join("\n");

/** Single-quotes a value for bash; the values are config-validated, but quoting keeps that from being load-bearing. */
export function shellQuote(value: string | number): string {
  return `'${String(value).replace(/'/g, `'\\''`)}'`;
}

/** The startup script's variable for a database role: DB_ROLE_APP for DATABASE_ROLES.app. */
export const databaseRoleVariable = (key: keyof typeof DATABASE_ROLES): string => `DB_ROLE_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;

/**
 * The part of the startup script that is the same on every node: the exporter settings, the database roles' names
 * (config: DATABASE_ROLES) and the bootstrap body (bootstrap/). It follows the per-node header, so the header's
 * variables are already set when it runs.
 */
export function citusSharedScript(): string {
  const roles = Object.fromEntries(Object.entries(DATABASE_ROLES).map(([key, role]) => [databaseRoleVariable(key as keyof typeof DATABASE_ROLES), role]));
  const shared = { POSTGRES_EXPORTER_PORT, EXPORTER_QUERIES: postgresExporterQueries(), ...roles };
  const lines = Object.entries(shared).map(([name, value]) => `readonly ${name}=${shellQuote(value)}`);
  return `${lines.join("\n")}\n\n${BODY}`;
}

/**
 * The GCE startup script of one Citus VM: a block of per-node variables (citusStartupHeader), then the part every
 * node shares (citusSharedScript). Generated, so a reviewer sees the exact script each node runs in the synthesized
 * JSON: the header on the instance, the shared part once per stack as a Terraform local.
 */
export function citusStartupScript(props: CitusBootstrapProps): string {
  return `${citusStartupHeader(props)}${citusSharedScript()}`;
}

/** The per-node part of the startup script: the shebang and the node's variables, ending in a blank line. */
export function citusStartupHeader(props: CitusBootstrapProps): string {
  if (!props.certificateHosts.includes(props.nodeHost)) {
    throw new Error(`${props.memberName}: certificateHosts (${props.certificateHosts.join(", ")}) must include its own name ${props.nodeHost}, which Patroni and Citus connect to with verify-full`);
  }
  if ((props.role === "coordinator") !== (props.group === 0)) {
    throw new Error(`${props.memberName}: a ${props.role} cannot be in Citus group ${props.group} (the coordinator's group is 0, a worker's is 1 or more)`);
  }
  const patroniConfig = citusPatroniConfig({
    scope: props.patroni.scope,
    memberName: props.memberName,
    memberHost: props.nodeHost,
    group: props.group,
    database: props.database,
    postgresMajor: props.postgresMajor,
    port: props.port,
    restApiPort: props.patroni.restApiPort,
    etcdHosts: props.patroni.etcdHosts,
    maxConnections: props.maxConnections,
    shardCount: props.shardCount,
    stanza: props.stanza,
    maxSlotWalKeepSize: props.maxSlotWalKeepSize,
    clientCidrs: props.clientCidrs,
    dataCidr: props.dataCidr,
    synchronous: props.patroni.synchronous,
    watchdog: props.patroni.watchdog,
  });
  const vars: Record<string, string | number> = {
    ROLE: props.role,
    NODE_HOST: props.nodeHost,
    MEMBER_NAME: props.memberName,
    CITUS_GROUP: props.group,
    GENERATES_SECRETS: props.generatesSecrets ? 1 : 0,
    CERT_HOSTS: props.certificateHosts.join(" "),
    PREFIX: props.prefix,
    PROJECT_ID: props.projectId,
    PG_MAJOR: props.postgresMajor,
    PG_PORT: props.port,
    PATRONI_REST_PORT: props.patroni.restApiPort,
    CITUS_PACKAGE: `postgresql-${props.postgresMajor}-citus-${props.citusVersion}`,
    DATA_MOUNT: CITUS_VM_PATHS.dataMount,
    DB_NAME: props.database,
    STANZA: props.stanza,
    BACKUP_BUCKET: props.backupBucket,
    FULL_BACKUP_RETENTION: props.fullBackupRetention,
    RESTORE_POINT_INTERVAL_MINUTES: props.restorePointIntervalMinutes,
    WATCHDOG_MODE: props.patroni.watchdog,
    SECRET_DB_SUPERUSER: props.secrets.superuser,
    SECRET_DB_REPLICATION: props.secrets.replication,
    SECRET_DB_MIGRATOR: props.secrets.migrator,
    SECRET_DB_APP: props.secrets.app,
    SECRET_DB_CA_KEY: props.secrets.caKey,
    SECRET_DB_CA_CERT: props.secrets.caCert,
    SECRET_HYDRA_DB: props.secrets.hydraDbPassword,
    SECRET_HYDRA_SYSTEM: props.secrets.hydraSystemSecret,
    SECRET_GRAFANA_ADMIN: props.secrets.grafanaAdminPassword,
    SECRET_ETCD_ROOT: props.secrets.etcdRootPassword,
    SECRET_ETCD_PATRONI: props.secrets.etcdPatroniPassword,
    SECRET_PATRONI_API: props.secrets.patroniRestApiPassword,
    // Patroni's configuration, from patroniMemberConfig: the bootstrap adds the passwords and writes it as it is.
    PATRONI_CONFIG: patroniConfig,
  };
  const header = Object.entries(vars)
    .map(([name, value]) => `readonly ${name}=${shellQuote(value)}`)
    .join("\n");
  return `#!/bin/bash\n# Generated by @platform/infra for ${props.nodeHost}.\n${header}\n\n`;
}
