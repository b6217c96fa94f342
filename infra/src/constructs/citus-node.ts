import { Construct } from "constructs";
import { ComputeAddress, ComputeDisk, ComputeDiskResourcePolicyAttachment, ComputeInstance, DnsRecordSet } from "../google.js";
import type { ITerraformDependable } from "cdktf";
import { ignoreTrivy } from "../policy/checkov-skips.js";
import { terraformLiteral } from "../terraform-literal.js";

/** Debian 12: PostgreSQL 15 natively, and a target of both the PGDG and the Citus package repositories. */
export const CITUS_VM_IMAGE = "debian-cloud/debian-12";

export interface CitusNodeProps {
  readonly projectId: string;
  readonly region: string;
  readonly zone: string;
  readonly instanceName: string;
  /** Fully-qualified host name in the private zone, without the trailing dot. */
  readonly host: string;
  readonly dnsZoneName: string;
  readonly machineType: string;
  readonly subnetwork: string;
  readonly networkTags: readonly string[];
  readonly serviceAccountEmail: string;
  readonly dataDisk: { readonly sizeGb: number; readonly type: string };
  /** Cloud KMS key for the boot and data disks. */
  readonly diskKey: string;
  /** Snapshot schedule attached to the data disk. */
  readonly snapshotPolicyName: string;
  /**
   * The startup script: this node's header (plain text) and the body shared by every node, as a reference to a
   * Terraform local holding it (cdktf then processes those tens of KB once per stack, not once per VM).
   */
  readonly startupScript: { readonly header: string; readonly sharedBody: string };
  readonly deletionProtection: boolean;
  readonly labels: Record<string, string>;
  /** E.g. the Compute service agent's grant on the disk key. */
  readonly dependsOn?: ITerraformDependable[];
  /**
   * What the VM's first boot needs besides `dependsOn`: Cloud NAT, through which the bootstrap reaches the package
   * repositories. A VM that boots before it spends its first boot retrying.
   */
  readonly bootAfter?: ITerraformDependable[];
}

/**
 * One PostgreSQL/Citus VM (a Patroni member of its Citus group): a static internal address, a separate CMEK-encrypted SSD data disk on a snapshot
 * schedule, a shielded VM without a public IP, reachable by SSH only through IAP with OS Login, and its DNS name.
 * The data disk outlives the VM: replacing the instance (a new image, a new machine type) keeps the database.
 */
export class CitusNode extends Construct {
  readonly instance: ComputeInstance;
  readonly address: ComputeAddress;
  readonly dataDisk: ComputeDisk;

  constructor(scope: Construct, id: string, props: CitusNodeProps) {
    super(scope, id);
    const { projectId: project, zone } = props;
    this.address = new ComputeAddress(this, "Address", {
      project,
      region: props.region,
      name: props.instanceName,
      subnetwork: props.subnetwork,
      addressType: "INTERNAL",
      purpose: "GCE_ENDPOINT",
    });
    this.dataDisk = new ComputeDisk(this, "DataDisk", {
      project,
      zone,
      name: `${props.instanceName}-data`,
      type: props.dataDisk.type,
      size: props.dataDisk.sizeGb,
      diskEncryptionKey: { kmsKeySelfLink: props.diskKey },
      labels: props.labels,
      lifecycle: { preventDestroy: props.deletionProtection },
      dependsOn: props.dependsOn,
    });
    new ComputeDiskResourcePolicyAttachment(this, "SnapshotSchedule", {
      project,
      zone,
      disk: this.dataDisk.name,
      name: props.snapshotPolicyName,
    });
    this.instance = new ComputeInstance(this, "Resource", {
      project,
      zone,
      name: props.instanceName,
      machineType: props.machineType,
      tags: [...props.networkTags],
      labels: props.labels,
      bootDisk: {
        initializeParams: { image: CITUS_VM_IMAGE, size: 20, type: "pd-balanced", labels: props.labels },
        kmsKeySelfLink: props.diskKey,
      },
      attachedDisk: [{ source: this.dataDisk.id, deviceName: "pgdata", mode: "READ_WRITE" }],
      networkInterface: [{ subnetwork: props.subnetwork, networkIp: this.address.address }],
      serviceAccount: { email: props.serviceAccountEmail, scopes: ["cloud-platform"] },
      shieldedInstanceConfig: { enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true },
      canIpForward: false,
      metadata: {
        "enable-oslogin": "TRUE",
        "block-project-ssh-keys": "true",
        "serial-port-enable": "false",
        "startup-script": `${terraformLiteral(props.startupScript.header)}${props.startupScript.sharedBody}`,
      },
      scheduling: { onHostMaintenance: "MIGRATE", automaticRestart: true, preemptible: false },
      deletionProtection: props.deletionProtection,
      allowStoppingForUpdate: true,
      // A new Debian point release must not replace a database VM; image upgrades are a runbook step.
      lifecycle: { ignoreChanges: ["boot_disk[0].initialize_params[0].image"] },
      dependsOn: [...(props.dependsOn ?? []), ...(props.bootAfter ?? [])],
    });
    ignoreTrivy(this.instance, {
      id: "GCP-0033",
      reason:
        "The attachment's disk is this construct's own google_compute_disk, encrypted with the disks key " +
        "(disk_encryption_key, checked by the platform's PLATFORM_CMEK rule); Trivy looks only at the attachment, which " +
        "repeats no key; naming the key again there would change nothing about how the data is encrypted",
    });
    new DnsRecordSet(this, "DnsRecord", {
      project,
      managedZone: props.dnsZoneName,
      name: `${props.host}.`,
      type: "A",
      ttl: 60,
      // The VM's own name, which never moves: Patroni follows the leader (pg_dist_node, the load balancer), not DNS.
      rrdatas: [this.address.address],
    });
  }
}
