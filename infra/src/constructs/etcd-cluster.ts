import { Construct } from "constructs";
import { ComputeAddress, ComputeDisk, ComputeInstance, DnsRecordSet, SecretManagerSecret, SecretManagerSecretIamMember } from "../google.js";
import { TerraformLocal, type ITerraformDependable } from "cdktf";
import { PORTS, type EnvironmentConfig, type PlatformNames } from "@platform/config";
import { DedicatedServiceAccount } from "./service-account.js";
import { CITUS_VM_IMAGE } from "./citus-node.js";
import { CITUS_ROLES } from "../citus/patroni-vm.js";
import { etcdSharedScript, etcdStartupHeader } from "../etcd/startup-script.js";
import { ignoreTrivy } from "../policy/checkov-skips.js";
import { terraformLiteral } from "../terraform-literal.js";

export interface EtcdClusterProps {
  readonly config: EnvironmentConfig;
  readonly names: PlatformNames;
  readonly subnetwork: string;
  readonly dnsZoneName: string;
  /** Cloud KMS key for the boot and data disks. */
  readonly diskKey: string;
  readonly labels: Record<string, string>;
  /** The secrets the members read: the database CA (they sign their own certificates), etcd's root and Patroni's passwords. */
  readonly secrets: { readonly caKey: SecretManagerSecret; readonly caCert: SecretManagerSecret; readonly rootPassword: SecretManagerSecret; readonly patroniPassword: SecretManagerSecret };
  /** E.g. the Compute service agent's grant on the disk key. */
  readonly dependsOn?: ITerraformDependable[];
  /** Cloud NAT: the members install etcd from Debian's repository on their first boot. */
  readonly egress: ITerraformDependable;
}

/** Logs and metrics only: the members read their secrets through grants on each secret, nothing project-wide. */
const ETCD_ROLES = ["roles/logging.logWriter", "roles/monitoring.metricWriter"];

/**
 * The DCS Patroni keeps each Citus group's leader lock in: three etcd VMs, one per zone, so that losing a zone keeps a
 * quorum. Like the Citus VMs: no public address, shielded, OS Login, CMEK boot and data disks, a DNS name each; the
 * firewall lets only the Citus VMs reach the client port and only the members each other's peer port.
 */
export class EtcdCluster extends Construct {
  readonly account: DedicatedServiceAccount;
  readonly instances: ComputeInstance[];

  constructor(scope: Construct, id: string, props: EtcdClusterProps) {
    super(scope, id);
    const { config, names } = props;
    const project = config.gcp.projectId;
    this.account = new DedicatedServiceAccount(this, "Account", {
      projectId: project,
      name: names.serviceAccounts.etcd,
      displayName: "etcd VMs (Patroni's DCS)",
      projectRoles: ETCD_ROLES,
    });
    for (const [key, secret] of Object.entries(props.secrets)) {
      new SecretManagerSecretIamMember(this, `${key}Accessor`, { project, secretId: secret.secretId, role: "roles/secretmanager.secretAccessor", member: this.account.member });
    }
    const members = names.patroni.etcd.map((m) => ({ name: m.instance, host: m.host }));
    const body = new TerraformLocal(this, "etcd_bootstrap_body", terraformLiteral(etcdSharedScript()));
    const labels = { ...props.labels, "etcd-member": "true" };
    this.instances = names.patroni.etcd.map((member, i) => {
      const node = new Construct(this, `Member${i}`);
      const address = new ComputeAddress(node, "Address", {
        project,
        region: config.gcp.region,
        name: member.instance,
        subnetwork: props.subnetwork,
        addressType: "INTERNAL",
        purpose: "GCE_ENDPOINT",
      });
      const dataDisk = new ComputeDisk(node, "DataDisk", {
        project,
        zone: member.zone,
        name: `${member.instance}-data`,
        type: "pd-balanced",
        size: config.citus.etcd.diskGb,
        diskEncryptionKey: { kmsKeySelfLink: props.diskKey },
        labels,
        dependsOn: props.dependsOn,
      });
      const header = etcdStartupHeader({
        memberName: member.instance,
        nodeHost: member.host,
        members,
        clusterToken: names.patroni.scope,
        projectId: project,
        clientPort: PORTS.etcdClient,
        peerPort: PORTS.etcdPeer,
        patroniUser: CITUS_ROLES.etcdUser,
        secrets: { caKey: names.secrets.dbCaKey, caCert: names.secrets.dbCaCert, rootPassword: names.secrets.etcdRootPassword, patroniPassword: names.secrets.etcdPatroniPassword },
      });
      const instance = new ComputeInstance(node, "Resource", {
        project,
        zone: member.zone,
        name: member.instance,
        machineType: config.citus.etcd.machineType,
        tags: [names.networkTags.etcd],
        labels,
        bootDisk: { initializeParams: { image: CITUS_VM_IMAGE, size: 10, type: "pd-balanced", labels }, kmsKeySelfLink: props.diskKey },
        attachedDisk: [{ source: dataDisk.id, deviceName: "etcd-data", mode: "READ_WRITE" }],
        networkInterface: [{ subnetwork: props.subnetwork, networkIp: address.address }],
        serviceAccount: { email: this.account.email, scopes: ["cloud-platform"] },
        shieldedInstanceConfig: { enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true },
        canIpForward: false,
        metadata: {
          "enable-oslogin": "TRUE",
          "block-project-ssh-keys": "true",
          "serial-port-enable": "false",
          "startup-script": `${terraformLiteral(header)}${body.asString}`,
        },
        scheduling: { onHostMaintenance: "MIGRATE", automaticRestart: true, preemptible: false },
        deletionProtection: config.citus.deletionProtection,
        allowStoppingForUpdate: true,
        lifecycle: { ignoreChanges: ["boot_disk[0].initialize_params[0].image"] },
        dependsOn: [...(props.dependsOn ?? []), props.egress],
      });
      ignoreTrivy(instance, {
        id: "GCP-0033",
        reason:
          "The attachment's disk is this construct's own google_compute_disk, encrypted with the disks key " +
          "(disk_encryption_key, checked by the platform's PLATFORM_CMEK rule); Trivy looks only at the attachment, which " +
          "repeats no key; naming the key again there would change nothing about how the data is encrypted",
      });
      new DnsRecordSet(node, "DnsRecord", { project, managedZone: props.dnsZoneName, name: `${member.host}.`, type: "A", ttl: 60, rrdatas: [address.address] });
      return instance;
    });
  }
}
