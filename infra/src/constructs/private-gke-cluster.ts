import { Construct } from "constructs";
import { ContainerCluster, ContainerNodePool } from "../google.js";
import type { ITerraformDependable } from "cdktf";
import { skipCheckov } from "../policy/checkov-skips.js";

const CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform";

export interface PrivateGkeClusterProps {
  readonly projectId: string;
  readonly name: string;
  readonly region: string;
  readonly zones: readonly string[];
  readonly network: string;
  readonly subnetwork: string;
  readonly podsRangeName: string;
  readonly servicesRangeName: string;
  /** /28 for the private control plane. */
  readonly controlPlaneCidr: string;
  /** Control plane only on its private endpoint; otherwise the public endpoint is limited to authorizedNetworks. */
  readonly privateEndpoint: boolean;
  readonly authorizedNetworks: readonly { readonly displayName: string; readonly cidrBlock: string }[];
  readonly workloadPool: string;
  readonly releaseChannel: "RAPID" | "REGULAR" | "STABLE";
  readonly maintenanceWindow: { readonly startTime: string; readonly endTime: string; readonly recurrence: string };
  /** Cloud KMS key for application-layer encryption of Kubernetes Secrets. */
  readonly secretsEncryptionKey: string;
  /** Cloud KMS key for node boot disks. */
  readonly bootDiskKey: string;
  /** The nodes' own least-privilege service account, never the Compute Engine default one. */
  readonly nodeServiceAccount: string;
  readonly nodeTags: readonly string[];
  readonly nodePool: {
    readonly name: string;
    readonly machineType: string;
    readonly minNodesPerZone: number;
    readonly maxNodesPerZone: number;
    readonly diskSizeGb: number;
    readonly maxSurge: number;
    readonly maxUnavailable: number;
  };
  readonly deletionProtection: boolean;
  /** Enforce the project's Binary Authorization policy at admission. */
  readonly binaryAuthorization: boolean;
  readonly labels: Record<string, string>;
  /** E.g. the KMS grants the GKE and Compute service agents need before the cluster can use the keys. */
  readonly dependsOn?: ITerraformDependable[];
}

/**
 * A regional GKE Standard cluster with private nodes, Workload Identity, Dataplane V2 (which enforces
 * NetworkPolicy itself), shielded nodes, KMS-encrypted Secrets and one autoscaled node pool. The default pool is
 * removed at creation so no node ever runs with the default compute service account.
 */
export class PrivateGkeCluster extends Construct {
  readonly cluster: ContainerCluster;
  readonly nodePool: ContainerNodePool;

  constructor(scope: Construct, id: string, props: PrivateGkeClusterProps) {
    super(scope, id);
    if (props.authorizedNetworks.some((n) => n.cidrBlock === "0.0.0.0/0")) {
      throw new Error(`${props.name}: 0.0.0.0/0 as an authorized network would expose the control plane to the internet`);
    }
    const shielded = { enableSecureBoot: true, enableIntegrityMonitoring: true };
    const workloadMetadata = { mode: "GKE_METADATA" };

    this.cluster = new ContainerCluster(this, "Resource", {
      project: props.projectId,
      name: props.name,
      location: props.region,
      nodeLocations: [...props.zones],
      network: props.network,
      subnetwork: props.subnetwork,
      networkingMode: "VPC_NATIVE",
      ipAllocationPolicy: {
        clusterSecondaryRangeName: props.podsRangeName,
        servicesSecondaryRangeName: props.servicesRangeName,
      },
      privateClusterConfig: {
        enablePrivateNodes: true,
        enablePrivateEndpoint: props.privateEndpoint,
        masterIpv4CidrBlock: props.controlPlaneCidr,
        masterGlobalAccessConfig: { enabled: false },
      },
      masterAuthorizedNetworksConfig: {
        cidrBlocks: props.authorizedNetworks.map((n) => ({ displayName: n.displayName, cidrBlock: n.cidrBlock })),
        gcpPublicCidrsAccessEnabled: false,
      },
      masterAuth: { clientCertificateConfig: { issueClientCertificate: false } },
      enableLegacyAbac: false,
      workloadIdentityConfig: { workloadPool: props.workloadPool },
      datapathProvider: "ADVANCED_DATAPATH",
      // Dataplane V2 enforces NetworkPolicy; the legacy Calico add-on must stay off alongside it.
      networkPolicy: { enabled: false },
      enableIntranodeVisibility: true,
      enableShieldedNodes: true,
      releaseChannel: { channel: props.releaseChannel },
      maintenancePolicy: { recurringWindow: { ...props.maintenanceWindow } },
      databaseEncryption: { state: "ENCRYPTED", keyName: props.secretsEncryptionKey },
      // Secret Manager CSI driver: pods mount their secrets as files through Workload Identity (k8s/).
      secretManagerConfig: { enabled: true },
      loggingService: "logging.googleapis.com/kubernetes",
      monitoringService: "monitoring.googleapis.com/kubernetes",
      loggingConfig: { enableComponents: ["SYSTEM_COMPONENTS", "WORKLOADS", "APISERVER"] },
      monitoringConfig: { enableComponents: ["SYSTEM_COMPONENTS", "APISERVER"], managedPrometheus: { enabled: false } },
      resourceLabels: props.labels,
      binaryAuthorization: props.binaryAuthorization ? { evaluationMode: "PROJECT_SINGLETON_POLICY_ENFORCE" } : undefined,
      deletionProtection: props.deletionProtection,
      // The default pool exists only while the cluster is created. It still gets the hardened node settings, so
      // even those first minutes run on the dedicated service account with shielded, metadata-protected nodes.
      removeDefaultNodePool: true,
      initialNodeCount: 1,
      nodeConfig: {
        serviceAccount: props.nodeServiceAccount,
        oauthScopes: [CLOUD_PLATFORM_SCOPE],
        shieldedInstanceConfig: shielded,
        workloadMetadataConfig: workloadMetadata,
        bootDiskKmsKey: props.bootDiskKey,
      },
      // node_config only describes the removed default pool; a diff there would needlessly replace the cluster.
      lifecycle: { ignoreChanges: ["node_config"] },
      dependsOn: props.dependsOn,
    });
    skipCheckov(this.cluster, {
      id: "CKV_GCP_65",
      reason:
        "The platform's Kubernetes RBAC binds only Kubernetes service accounts (k8s/); Google Groups for RBAC needs a " +
        "gke-security-groups group in a Google Workspace or Cloud Identity domain, which the config does not name",
    });
    if (!props.binaryAuthorization) {
      skipCheckov(this.cluster, {
        id: "CKV_GCP_66",
        reason:
          "This environment's config turns Binary Authorization off (gke.binaryAuthorization); production enforces it " +
          "with a deny-by-default policy of the platform's repositories (platform rule PLATFORM_BINAUTHZ_DENY_BY_DEFAULT)",
      });
    }

    const pool = props.nodePool;
    this.nodePool = new ContainerNodePool(this, "NodePool", {
      project: props.projectId,
      name: pool.name,
      cluster: this.cluster.id,
      location: props.region,
      autoscaling: { minNodeCount: pool.minNodesPerZone, maxNodeCount: pool.maxNodesPerZone, locationPolicy: "BALANCED" },
      management: { autoRepair: true, autoUpgrade: true },
      upgradeSettings: { strategy: "SURGE", maxSurge: pool.maxSurge, maxUnavailable: pool.maxUnavailable },
      nodeConfig: {
        machineType: pool.machineType,
        diskSizeGb: pool.diskSizeGb,
        diskType: "pd-balanced",
        imageType: "COS_CONTAINERD",
        serviceAccount: props.nodeServiceAccount,
        oauthScopes: [CLOUD_PLATFORM_SCOPE],
        shieldedInstanceConfig: shielded,
        workloadMetadataConfig: workloadMetadata,
        bootDiskKmsKey: props.bootDiskKey,
        tags: [...props.nodeTags],
        labels: props.labels,
        resourceLabels: props.labels,
        metadata: { "disable-legacy-endpoints": "true" },
      },
      // The autoscaler owns the node count.
      lifecycle: { ignoreChanges: ["initial_node_count"] },
    });
  }
}
