import { Construct } from "constructs";
import { ComputeGlobalAddress, ComputeNetwork, ComputeRouter, ComputeRouterNat, ComputeSubnetwork, DnsManagedZone, ServiceNetworkingConnection } from "../google.js";
import { formatIpv4, parseCidr, prefixLength, type PlatformNames } from "@platform/config";

export interface PlatformNetworkProps {
  readonly projectId: string;
  readonly region: string;
  readonly names: Pick<
    PlatformNames,
    "network" | "gkeSubnet" | "dataSubnet" | "podsRange" | "servicesRange" | "privateServiceAccessRange" | "router" | "nat" | "dnsZone"
  >;
  readonly gkeNodesCidr: string;
  readonly podsCidr: string;
  readonly servicesCidr: string;
  readonly dataCidr: string;
  readonly privateServiceAccessCidr: string;
  /** The private zone's DNS name, ending with a dot. */
  readonly privateDnsDomain: string;
  /** VPC flow-log sampling rate, 0 < rate <= 1. */
  readonly flowLogSampling: number;
  readonly labels: Record<string, string>;
}

/**
 * The custom-mode VPC: a GKE subnet with secondary ranges for pods and services, a database subnet, egress through
 * Cloud NAT only (nothing here has a public IP), Private Service Access for Memorystore and a private DNS zone for
 * database hosts.
 */
export class PlatformNetwork extends Construct {
  readonly network: ComputeNetwork;
  readonly gkeSubnet: ComputeSubnetwork;
  readonly dataSubnet: ComputeSubnetwork;
  /** Egress to the internet for VMs without public addresses (the Citus VMs' package repositories). */
  readonly nat: ComputeRouterNat;
  readonly privateServiceAccess: ServiceNetworkingConnection;
  readonly privateServiceAccessRange: ComputeGlobalAddress;
  readonly dnsZone: DnsManagedZone;

  constructor(scope: Construct, id: string, props: PlatformNetworkProps) {
    super(scope, id);
    const { projectId: project, region, names } = props;
    this.network = new ComputeNetwork(this, "Vpc", {
      project,
      name: names.network,
      autoCreateSubnetworks: false,
      routingMode: "REGIONAL",
      // The default 0.0.0.0/0 route stays: Cloud NAT needs it. No instance has an external address to use it with.
      deleteDefaultRoutesOnCreate: false,
    });
    const logConfig = {
      aggregationInterval: "INTERVAL_5_SEC",
      flowSampling: props.flowLogSampling,
      metadata: "INCLUDE_ALL_METADATA",
    };
    this.gkeSubnet = new ComputeSubnetwork(this, "GkeSubnet", {
      project,
      region,
      name: names.gkeSubnet,
      network: this.network.id,
      ipCidrRange: props.gkeNodesCidr,
      privateIpGoogleAccess: true,
      secondaryIpRange: [
        { rangeName: names.podsRange, ipCidrRange: props.podsCidr },
        { rangeName: names.servicesRange, ipCidrRange: props.servicesCidr },
      ],
      logConfig,
    });
    this.dataSubnet = new ComputeSubnetwork(this, "DataSubnet", {
      project,
      region,
      name: names.dataSubnet,
      network: this.network.id,
      ipCidrRange: props.dataCidr,
      privateIpGoogleAccess: true,
      logConfig,
    });

    const router = new ComputeRouter(this, "Router", { project, region, name: names.router, network: this.network.id });
    this.nat = new ComputeRouterNat(this, "Nat", {
      project,
      region,
      name: names.nat,
      router: router.name,
      natIpAllocateOption: "AUTO_ONLY",
      sourceSubnetworkIpRangesToNat: "ALL_SUBNETWORKS_ALL_IP_RANGES",
      enableEndpointIndependentMapping: false,
      minPortsPerVm: 256,
      logConfig: { enable: true, filter: "ERRORS_ONLY" },
    });

    const psa = parseCidr(props.privateServiceAccessCidr);
    this.privateServiceAccessRange = new ComputeGlobalAddress(this, "PrivateServiceAccessRange", {
      project,
      name: names.privateServiceAccessRange,
      network: this.network.id,
      purpose: "VPC_PEERING",
      addressType: "INTERNAL",
      address: formatIpv4(psa.first),
      prefixLength: prefixLength(props.privateServiceAccessCidr),
    });
    this.privateServiceAccess = new ServiceNetworkingConnection(this, "PrivateServiceAccess", {
      network: this.network.id,
      service: "servicenetworking.googleapis.com",
      reservedPeeringRanges: [this.privateServiceAccessRange.name],
    });

    this.dnsZone = new DnsManagedZone(this, "DatabaseZone", {
      project,
      name: names.dnsZone,
      dnsName: props.privateDnsDomain,
      description: "Database and cache hosts. Failover repoints a record here; clients keep their connection strings.",
      visibility: "private",
      privateVisibilityConfig: { networks: [{ networkUrl: this.network.id }] },
      labels: props.labels,
    });
  }
}
