import { Construct } from "constructs";
import { Fn, Token, propertyAccess, type ITerraformDependable } from "cdktf";
import type { EnvironmentConfig, PlatformNames } from "@platform/config";
import { DnsRecordSet, SecretManagerSecret, SecretManagerSecretVersion, loadCloudSqlBindings } from "../google.js";
import { skipCheckov } from "../policy/checkov-skips.js";

export interface CloudSqlPostgresProps {
  readonly config: EnvironmentConfig;
  readonly names: PlatformNames;
  /** The VPC: the instance takes a private address from its Private Service Access range, and has no other. */
  readonly network: string;
  /** The Private Service Access range's name (google_compute_global_address): where the instance's address comes from. */
  readonly privateServiceAccessRange: string;
  readonly dnsZoneName: string;
  /** The stack's Cloud SQL key: data, backups and write-ahead log are encrypted with it. */
  readonly kmsKey: string;
  /** Cloud SQL's service agent (service-<number>@gcp-sa-cloud-sql): it encrypts with the key and asks the CA for the server certificate. */
  readonly serviceAgent: string;
  readonly labels: Record<string, string>;
  /** The Private Service Access connection and the key's grant: the instance cannot be created before either. */
  readonly dependsOn: ITerraformDependable[];
}

/** Cloud SQL's maintenance day: 1 is Monday. */
const WEEKDAY = { MONDAY: 1, TUESDAY: 2, WEDNESDAY: 3, THURSDAY: 4, FRIDAY: 5, SATURDAY: 6, SUNDAY: 7 } as const;

/**
 * The flags, after the Citus nodes' (src/citus/patroni-vm.ts) where both have one, plus what the policy checks ask of
 * Cloud SQL. pg_stat_statements needs no preload on Cloud SQL: the database bootstrap creates the extension.
 */
export function cloudSqlFlags(maxConnections: number, logicalDecoding = false): Record<string, string> {
  return {
    max_connections: String(maxConnections),
    // Slow statements, as on the Citus nodes; their parameters are not logged: they are tenant data.
    log_min_duration_statement: "1000",
    log_parameter_max_length: "0",
    log_parameter_max_length_on_error: "0",
    log_lock_waits: "on",
    log_temp_files: "0",
    log_checkpoints: "on",
    log_connections: "on",
    log_disconnections: "on",
    log_hostname: "on",
    log_min_messages: "warning",
    log_min_error_statement: "error",
    // Schema and role changes, never data: DDL and pgAudit's role class.
    log_statement: "ddl",
    "cloudsql.enable_pgaudit": "on",
    "pgaudit.log": "ddl,role",
    // Operators connect as themselves (IAM database authentication) to read; the platform's roles keep passwords.
    "cloudsql.iam_authentication": "on",
    "pg_stat_statements.track": "top",
    track_activity_query_size: "4096",
    track_io_timing: "on",
    // With Citus alongside (database.citusAlongside), tenantctl decodes each moving tenant's changes from a logical
    // slot here (citus/src/tenantctl/stream.ts): logical decoding on (wal_level logical, a restart), and slots for a
    // wave of moves (--concurrency, 4 by default) with room for a second wave and a resumed one.
    ...(logicalDecoding ? { "cloudsql.logical_decoding": "on", max_replication_slots: "20" } : {}),
  };
}

/**
 * The postgres engine (config database.engine): one Cloud SQL for PostgreSQL 15 instance holding the platform's
 * database and Hydra's, with the platform's roles and secrets. Private IP only, from the VPC's Private Service Access
 * range; TLS required, with a server certificate for `names.database.host` signed by the stack's own CA (Certificate
 * Authority Service), so clients verify it by name against the CA in the db CA secret, as they verify the Citus
 * coordinator. Encrypted with the stack's Cloud SQL key; daily backups and point-in-time recovery; regional (a
 * standby in a second zone) where the config asks, which production must.
 *
 * Users: google_sql_user creates the built-in users, each with a random write-only password Terraform never stores
 * and nobody knows; `scripts/deploy`'s database-bootstrap step then sets each one's password from its Secret Manager
 * secret (generating it there first, as the Citus coordinator does) and runs the SQL Cloud SQL's API cannot express
 * (the NOLOGIN queue role, memberships and grants: src/cloudsql/bootstrap.sql).
 */
export class CloudSqlPostgres extends Construct {
  readonly instance: InstanceType<ReturnType<typeof loadCloudSqlBindings>["SqlDatabaseInstance"]>;
  readonly record: DnsRecordSet;
  /** The secrets the workloads read, under the same ids as the Citus engine's. */
  readonly secrets: Record<"dbSuperuser" | "dbMigrator" | "dbApp" | "dbCaCert" | "hydraDbPassword" | "hydraSystemSecret" | "grafanaAdminPassword", SecretManagerSecret>;

  constructor(scope: Construct, id: string, props: CloudSqlPostgresProps) {
    super(scope, id);
    const { SqlDatabaseInstance, SqlDatabase, SqlUser, PrivatecaCaPool, PrivatecaCaPoolIamMember, PrivatecaCertificateAuthority } = loadCloudSqlBindings();
    const { config, names } = props;
    const project = config.gcp.projectId;
    const region = config.gcp.region;
    const sql = config.database.cloudSql;
    const roles = names.databaseRoles;

    // The server CA: Cloud SQL's agent requests the instance's certificate from this pool, with the host name clients use.
    const pool = new PrivatecaCaPool(this, "CaPool", {
      project,
      name: names.cloudSql.caPool,
      location: region,
      // DevOps: issues without storing certificates or publishing CRLs; the instance's certificate is renewed by Cloud SQL.
      tier: "DEVOPS",
      publishingOptions: { publishCaCert: false, publishCrl: false },
      labels: props.labels,
    });
    const ca = new PrivatecaCertificateAuthority(this, "Ca", {
      project,
      location: region,
      pool: pool.name,
      certificateAuthorityId: names.cloudSql.certificateAuthority,
      type: "SELF_SIGNED",
      lifetime: `${10 * 365 * 86400}s`,
      keySpec: { algorithm: "EC_P256_SHA256" },
      config: {
        subjectConfig: { subject: { organization: config.prefix, commonName: `${config.prefix} database server CA` } },
        x509Config: {
          caOptions: { isCa: true, maxIssuerPathLength: 0 },
          keyUsage: { baseKeyUsage: { certSign: true, crlSign: true }, extendedKeyUsage: { serverAuth: true } },
        },
      },
      deletionProtection: sql.deletionProtection,
      skipGracePeriod: !sql.deletionProtection,
      ignoreActiveCertificatesOnDeletion: !sql.deletionProtection,
      labels: props.labels,
    });
    const requester = new PrivatecaCaPoolIamMember(this, "CaPoolRequester", {
      caPool: pool.id,
      role: "roles/privateca.certificateRequester",
      member: `serviceAccount:${props.serviceAgent}`,
    });

    const flags = cloudSqlFlags(config.citus.coordinatorMaxConnections, config.database.citusAlongside);
    this.instance = new SqlDatabaseInstance(this, "Instance", {
      project,
      region,
      name: names.cloudSql.instance,
      databaseVersion: "POSTGRES_15",
      encryptionKeyName: props.kmsKey,
      deletionProtection: sql.deletionProtection,
      settings: {
        tier: sql.tier,
        edition: "ENTERPRISE",
        availabilityType: sql.highAvailability ? "REGIONAL" : "ZONAL",
        locationPreference: { zone: config.gcp.zones[0]!, ...(sql.highAvailability ? { secondaryZone: config.gcp.zones[1]! } : {}) },
        diskType: "PD_SSD",
        diskSize: sql.diskGb,
        diskAutoresize: true,
        deletionProtectionEnabled: sql.deletionProtection,
        userLabels: props.labels,
        ipConfiguration: {
          ipv4Enabled: false,
          privateNetwork: props.network,
          allocatedIpRange: props.privateServiceAccessRange,
          sslMode: "ENCRYPTED_ONLY",
          serverCaMode: "CUSTOMER_MANAGED_CAS_CA",
          serverCaPool: pool.id,
          customSubjectAlternativeNames: [names.cloudSql.host],
        },
        backupConfiguration: {
          enabled: true,
          pointInTimeRecoveryEnabled: true,
          startTime: "02:00",
          location: region,
          transactionLogRetentionDays: sql.pointInTimeRecoveryDays,
          backupRetentionSettings: { retainedBackups: sql.backupRetentionCount, retentionUnit: "COUNT" },
        },
        maintenanceWindow: { day: WEEKDAY[sql.maintenanceWindow.day], hour: sql.maintenanceWindow.hour, updateTrack: "stable" },
        insightsConfig: { queryInsightsEnabled: true, queryStringLength: 4096, queryPlansPerMinute: 5, recordApplicationTags: true, recordClientAddress: false },
        databaseFlags: Object.entries(flags).map(([name, value]) => ({ name, value })),
      },
      dependsOn: [...props.dependsOn, requester, ca],
    });
    skipCheckov(this.instance, {
      id: "CKV_GCP_79",
      reason:
        "PostgreSQL 15 on purpose: the migrations are proven on PostgreSQL 15 and Citus 13 on 15, and a tenant's move to Citus (docs/SCALING.md) " +
        "replicates logically between the two; a newer major here would be moved back down. Upgrade both engines together",
    });
    skipCheckov(this.instance, {
      id: "CKV_GCP_6",
      reason:
        "Every connection is TLS (ssl_mode ENCRYPTED_ONLY) and clients verify the server by name against the stack's CA; Checkov accepts only " +
        "TRUSTED_CLIENT_CERTIFICATE_REQUIRED for PostgreSQL, client certificates from Cloud SQL that the service, worker and Hydra do not present: " +
        "they authenticate with SCRAM passwords from Secret Manager, as on the Citus nodes",
    });
    skipCheckov(this.instance, {
      id: "CKV2_GCP_13",
      reason:
        "log_duration on writes a log line for every statement (thousands a second under load) without its text; statements slower than 1 s " +
        "are logged with their text (log_min_duration_statement) and Query Insights keeps every statement's latency",
    });

    new SqlDatabase(this, "PlatformDatabase", { project, instance: this.instance.name, name: names.citusDatabase, deletionPolicy: "ABANDON" });
    new SqlDatabase(this, "HydraDatabase", { project, instance: this.instance.name, name: names.hydraDatabase, deletionPolicy: "ABANDON" });
    // A password only Terraform's apply sees (write-only: never in state or plan) and nobody keeps: the database
    // bootstrap sets the real one from the role's secret. ABANDON: a role that owns objects cannot be dropped, and the
    // data outlives a removed user resource.
    for (const [key, role] of [["Migrator", roles.migrator], ["App", roles.app], ["Hydra", roles.hydra]] as const) {
      new SqlUser(this, `${key}User`, {
        project,
        instance: this.instance.name,
        name: role,
        type: "BUILT_IN",
        passwordWo: Fn.uuid(),
        passwordWoVersion: 1,
        deletionPolicy: "ABANDON",
      });
    }

    const secret = (key: string, secretId: string): SecretManagerSecret =>
      new SecretManagerSecret(this, key, { project, secretId, replication: { auto: {} }, labels: props.labels });
    this.secrets = {
      dbSuperuser: secret("SuperuserPassword", names.secrets.dbSuperuser),
      dbMigrator: secret("MigratorPassword", names.secrets.dbMigrator),
      dbApp: secret("AppPassword", names.secrets.dbApp),
      dbCaCert: secret("CaCert", names.secrets.dbCaCert),
      hydraDbPassword: secret("HydraDbPassword", names.secrets.hydraDbPassword),
      hydraSystemSecret: secret("HydraSystemSecret", names.secrets.hydraSystemSecret),
      grafanaAdminPassword: secret("GrafanaAdminPassword", names.secrets.grafanaAdminPassword),
    };
    // The CA certificate is public: Terraform writes it, the clients' CA file (sslrootcert) as for Citus.
    new SecretManagerSecretVersion(this, "CaCertVersion", { secret: this.secrets.dbCaCert.id, secretData: Token.asString(propertyAccess(ca.pemCaCertificates, [0])) });

    this.record = new DnsRecordSet(this, "ClientName", {
      project,
      managedZone: props.dnsZoneName,
      name: `${names.cloudSql.host}.`,
      type: "A",
      ttl: 60,
      rrdatas: [this.instance.privateIpAddress],
    });
  }
}
