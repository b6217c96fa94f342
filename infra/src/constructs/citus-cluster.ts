import { Construct } from "constructs";
import { ComputeResourcePolicy, DnsRecordSet, SecretManagerSecret, SecretManagerSecretIamMember, StorageBucketIamMember } from "../google.js";
import { TerraformLocal, type ITerraformDependable } from "cdktf";
import type { EnvironmentConfig, PlatformNames } from "@platform/config";
import { CitusNode } from "./citus-node.js";
import { CoordinatorLoadBalancer } from "./coordinator-load-balancer.js";
import { DedicatedServiceAccount } from "./service-account.js";
import { citusSharedScript, citusStartupHeader, type CitusBootstrapProps } from "../citus/startup-script.js";
import { terraformLiteral } from "../terraform-literal.js";
import { PORTS } from "@platform/config";

export interface CitusClusterProps {
  readonly config: EnvironmentConfig;
  readonly names: PlatformNames;
  readonly subnetwork: string;
  readonly dnsZoneName: string;
  readonly diskKey: string;
  readonly backupsBucket: string;
  readonly labels: Record<string, string>;
  /** E.g. the Compute service agent's grant on the disk key. */
  readonly dependsOn?: ITerraformDependable[];
  /** The VPC: the coordinator's internal load balancer and its instance groups live in it. */
  readonly network: string;
  /** Cloud NAT: the VMs' bootstrap installs PostgreSQL and Citus from the internet, so they boot after it exists. */
  readonly egress: ITerraformDependable;
}

const VM_ROLES = ["roles/logging.logWriter", "roles/monitoring.metricWriter"];

/** The secrets a worker's bootstrap reads (and a worker's standby's, which uses the same account). */
const WORKER_SECRETS: readonly (keyof CitusCluster["secrets"])[] = ["dbSuperuser", "dbReplication", "dbMigrator", "dbApp", "dbCaKey", "dbCaCert", "etcdPatroniPassword", "patroniRestApiPassword"];

/**
 * The Citus coordinator and workers, each with an optional streaming standby in another zone, their service
 * accounts and the database secrets. Terraform creates the secrets empty; the coordinator fills them on its first
 * boot, so no password ever exists in Terraform configuration or state.
 */
export class CitusCluster extends Construct {
  readonly coordinator: CitusNode;
  readonly workers: CitusNode[];
  readonly standbys: CitusNode[];
  readonly secrets: Record<
    | "dbSuperuser" | "dbReplication" | "dbMigrator" | "dbApp" | "dbCaKey" | "dbCaCert" | "hydraDbPassword" | "hydraSystemSecret"
    | "grafanaAdminPassword" | "etcdRootPassword" | "etcdPatroniPassword" | "patroniRestApiPassword",
    SecretManagerSecret
  >;
  readonly coordinatorAccount: DedicatedServiceAccount;
  readonly coordinatorRecord: DnsRecordSet;
  readonly coordinatorLoadBalancer: CoordinatorLoadBalancer;
  readonly workerAccount: DedicatedServiceAccount;

  constructor(scope: Construct, id: string, props: CitusClusterProps) {
    super(scope, id);
    const { config, names } = props;
    const project = config.gcp.projectId;
    const citus = config.citus;

    this.coordinatorAccount = new DedicatedServiceAccount(this, "CoordinatorAccount", {
      projectId: project,
      name: names.serviceAccounts.citusCoordinator,
      displayName: "Citus coordinator VMs",
      projectRoles: VM_ROLES,
    });
    this.workerAccount = new DedicatedServiceAccount(this, "WorkerAccount", {
      projectId: project,
      name: names.serviceAccounts.citusWorker,
      displayName: "Citus worker VMs",
      projectRoles: VM_ROLES,
    });

    const secret = (key: string, secretId: string): SecretManagerSecret =>
      new SecretManagerSecret(this, key, { project, secretId, replication: { auto: {} }, labels: props.labels });
    this.secrets = {
      dbSuperuser: secret("SuperuserPassword", names.secrets.dbSuperuser),
      dbReplication: secret("ReplicationPassword", names.secrets.dbReplication),
      dbMigrator: secret("MigratorPassword", names.secrets.dbMigrator),
      dbApp: secret("AppPassword", names.secrets.dbApp),
      dbCaKey: secret("CaKey", names.secrets.dbCaKey),
      dbCaCert: secret("CaCert", names.secrets.dbCaCert),
      hydraDbPassword: secret("HydraDbPassword", names.secrets.hydraDbPassword),
      hydraSystemSecret: secret("HydraSystemSecret", names.secrets.hydraSystemSecret),
      grafanaAdminPassword: secret("GrafanaAdminPassword", names.secrets.grafanaAdminPassword),
      etcdRootPassword: secret("EtcdRootPassword", names.secrets.etcdRootPassword),
      etcdPatroniPassword: secret("EtcdPatroniPassword", names.secrets.etcdPatroniPassword),
      patroniRestApiPassword: secret("PatroniRestApiPassword", names.secrets.patroniRestApiPassword),
    };
    // The coordinator generates every secret here, so it reads (to find one already made) and adds versions to all.
    // Workers read only what their own bootstrap does: the database roles for .pgpass, since Citus connects node to
    // node as the client's own role, the CA, to sign their server certificate, and Patroni's etcd and REST passwords. Beyond the coordinator, Hydra's and
    // Grafana's secrets are read by those workloads only.
    for (const [key, s] of Object.entries(this.secrets) as [keyof CitusCluster["secrets"], SecretManagerSecret][]) {
      const readers = [["Coordinator", this.coordinatorAccount]] as Array<[string, DedicatedServiceAccount]>;
      if (WORKER_SECRETS.includes(key)) readers.push(["Worker", this.workerAccount]);
      for (const [who, account] of readers) {
        new SecretManagerSecretIamMember(this, `${key}${who}Accessor`, {
          project,
          secretId: s.secretId,
          role: "roles/secretmanager.secretAccessor",
          member: account.member,
        });
      }
      new SecretManagerSecretIamMember(this, `${key}CoordinatorAdder`, {
        project,
        secretId: s.secretId,
        role: "roles/secretmanager.secretVersionAdder",
        member: this.coordinatorAccount.member,
      });
    }
    for (const [who, account] of [["Coordinator", this.coordinatorAccount], ["Worker", this.workerAccount]] as const) {
      // pgBackRest writes, lists and expires its own files; the bucket's lifecycle is only a safety net.
      new StorageBucketIamMember(this, `Backups${who}`, { bucket: props.backupsBucket, role: "roles/storage.objectAdmin", member: account.member });
    }

    const snapshots = new ComputeResourcePolicy(this, "SnapshotSchedule", {
      project,
      region: config.gcp.region,
      name: `${config.prefix}-citus-data-snapshots`,
      description: "Daily crash-consistent snapshots of Citus data disks, behind pgBackRest's WAL archive",
      snapshotSchedulePolicy: {
        schedule: { dailySchedule: { daysInCycle: 1, startTime: "02:00" } },
        retentionPolicy: { maxRetentionDays: citus.snapshotRetentionDays, onSourceDiskDelete: "KEEP_AUTO_SNAPSHOTS" },
        snapshotProperties: { labels: props.labels, storageLocations: [config.gcp.region], guestFlush: false },
      },
    });

    const coordinatorName = names.citus.coordinator;
    const clientCidrs = [config.network.gkeNodesCidr, config.network.podsCidr, config.network.dataCidr];
    const baseScript: Omit<CitusBootstrapProps, "role" | "nodeHost" | "memberName" | "group" | "generatesSecrets" | "certificateHosts" | "stanza" | "maxSlotWalKeepSize" | "maxConnections"> = {
      prefix: config.prefix,
      projectId: project,
      postgresMajor: citus.postgresMajor,
      citusVersion: citus.citusVersion,
      port: names.postgresPort,
      database: names.citusDatabase,
      shardCount: citus.shardCount,
      backupBucket: names.backupsBucket,
      fullBackupRetention: citus.fullBackupRetention,
      restorePointIntervalMinutes: citus.restorePointIntervalMinutes,
      clientCidrs,
      dataCidr: config.network.dataCidr,
      patroni: {
        scope: names.patroni.scope,
        etcdHosts: names.patroni.etcd.map((e) => `${e.host}:${PORTS.etcdClient}`),
        restApiPort: PORTS.patroniRestApi,
        // Production's groups have two members: a commit waits for the synchronous standby (no acknowledged write
        // lost in a failover), and a leader without its watchdog does not lead. One-member groups (dev, staging) have
        // no one to fail over to: asynchronous, and the watchdog used where the VM has it.
        synchronous: citus.standby,
        watchdog: citus.standby ? "required" : "automatic",
      },
      secrets: {
        superuser: names.secrets.dbSuperuser,
        replication: names.secrets.dbReplication,
        migrator: names.secrets.dbMigrator,
        app: names.secrets.dbApp,
        caKey: names.secrets.dbCaKey,
        caCert: names.secrets.dbCaCert,
        hydraDbPassword: names.secrets.hydraDbPassword,
        hydraSystemSecret: names.secrets.hydraSystemSecret,
        grafanaAdminPassword: names.secrets.grafanaAdminPassword,
        etcdRootPassword: names.secrets.etcdRootPassword,
        etcdPatroniPassword: names.secrets.etcdPatroniPassword,
        patroniRestApiPassword: names.secrets.patroniRestApiPassword,
      },
    };

    this.standbys = [];
    const coordinatorMembers: CitusNode[] = [];
    // Most of the script is the same on every node: one Terraform local, which each instance's script ends with.
    const body = new TerraformLocal(this, "citus_bootstrap_body", terraformLiteral(citusSharedScript()));
    const script = (bootstrap: CitusBootstrapProps) => ({ header: citusStartupHeader(bootstrap), sharedBody: body.asString });
    /** One Citus group: its first member and, in production, a second in another zone. Patroni decides which leads. */
    const group = (name: PlatformNames["citus"]["coordinator"], spec: { machineType: string; dataDiskGb: number }): CitusNode => {
      const account = name.role === "coordinator" ? this.coordinatorAccount : this.workerAccount;
      const stanza = `${config.prefix}-${name.role === "coordinator" ? "coordinator" : `worker-${name.index}`}`;
      // A slot may hold back at most a tenth of the disk: a dead standby costs a re-clone, never a full primary.
      const maxSlotWalKeepSize = `${Math.max(5, Math.floor(spec.dataDiskGb / 10))}GB`;
      const id = name.role === "coordinator" ? "Coordinator" : `Worker${name.index}`;
      const common = {
        projectId: project,
        region: config.gcp.region,
        dnsZoneName: props.dnsZoneName,
        machineType: spec.machineType,
        subnetwork: props.subnetwork,
        networkTags: [names.networkTags.citus],
        serviceAccountEmail: account.email,
        dataDisk: { sizeGb: spec.dataDiskGb, type: citus.dataDiskType },
        diskKey: props.diskKey,
        snapshotPolicyName: snapshots.name,
        deletionProtection: citus.deletionProtection,
        // citus-group: Prometheus's Patroni job reads it (__meta_gce_label_citus_group) to group members by Citus group.
        labels: { ...props.labels, "citus-role": name.role, "citus-group": String(name.group) },
        dependsOn: props.dependsOn,
        bootAfter: [props.egress],
      };
      const member = (m: { instance: string; zone: string; host: string }, first: boolean) => ({
        zone: m.zone,
        instanceName: m.instance,
        host: m.host,
        startupScript: script({
          ...baseScript,
          role: name.role,
          nodeHost: m.host,
          memberName: m.instance,
          group: name.group,
          generatesSecrets: name.role === "coordinator" && first,
          // The coordinator's members also answer for the load balancer's name, which clients verify (verify-full).
          certificateHosts: name.role === "coordinator" ? [m.host, name.host] : [m.host],
          stanza,
          maxSlotWalKeepSize,
          maxConnections: name.role === "coordinator" ? citus.coordinatorMaxConnections : citus.workerMaxConnections,
        }),
      });
      const first = new CitusNode(this, id, { ...common, ...member(name.member, true) });
      if (name.standby) {
        const second = new CitusNode(this, `${id}Standby`, { ...common, ...member(name.standby, false) });
        this.standbys.push(second);
        if (name.role === "coordinator") coordinatorMembers.push(second);
      }
      if (name.role === "coordinator") coordinatorMembers.unshift(first);
      return first;
    };
    this.coordinator = group(coordinatorName, citus.coordinator);
    this.workers = names.citus.workers.map((w) => group(w, citus.worker));
    // Clients follow the coordinator group's leader through one address: the load balancer health-checks Patroni's
    // /primary on every member. The name every client uses points at it, apart from the members' own names.
    this.coordinatorLoadBalancer = new CoordinatorLoadBalancer(this, "CoordinatorLoadBalancer", {
      projectId: project,
      region: config.gcp.region,
      network: props.network,
      subnetwork: props.subnetwork,
      names: names.coordinatorLoadBalancer,
      members: coordinatorMembers.map((m) => m.instance),
      zones: [coordinatorName.member.zone, ...(coordinatorName.standby ? [coordinatorName.standby.zone] : [])],
      postgresPort: names.postgresPort,
      patroniRestApiPort: PORTS.patroniRestApi,
    });
    this.coordinatorRecord = new DnsRecordSet(this, "CoordinatorClientName", {
      project,
      managedZone: props.dnsZoneName,
      name: `${coordinatorName.host}.`,
      type: "A",
      ttl: 60,
      rrdatas: [this.coordinatorLoadBalancer.address.address],
    });
  }
}
