import { Construct } from "constructs";
import { ComputeAddress, ComputeForwardingRule, ComputeInstanceGroup, ComputeRegionBackendService, ComputeRegionHealthCheck, type ComputeInstance } from "../google.js";

export interface CoordinatorLoadBalancerProps {
  readonly projectId: string;
  readonly region: string;
  readonly network: string;
  readonly subnetwork: string;
  readonly names: {
    readonly address: string;
    readonly healthCheck: string;
    readonly backendService: string;
    readonly forwardingRule: string;
    readonly instanceGroup: (zone: string) => string;
  };
  /** The coordinator group's members: any of them may lead. */
  readonly members: readonly ComputeInstance[];
  /** Each member's zone, in the same order (an unmanaged instance group is zonal). */
  readonly zones: readonly string[];
  readonly postgresPort: number;
  readonly patroniRestApiPort: number;
}

/**
 * The one address clients use for the coordinator: an internal passthrough TCP load balancer in front of the
 * coordinator group's members, whose health check is Patroni's REST `/primary` (200 on the leader only, 503 on a
 * replica). After a failover the new leader turns healthy and the old one unhealthy within a few checks: clients
 * reconnect to the same address and reach the new leader, with no DNS edit.
 *
 * Passthrough: connections arrive with the client's own address (pg_hba.conf's ranges keep meaning what they say)
 * and TLS ends in PostgreSQL, whose certificate carries the load balancer's name.
 */
export class CoordinatorLoadBalancer extends Construct {
  readonly address: ComputeAddress;
  readonly forwardingRule: ComputeForwardingRule;

  constructor(scope: Construct, id: string, props: CoordinatorLoadBalancerProps) {
    super(scope, id);
    if (props.members.length !== props.zones.length || props.members.length === 0) {
      throw new Error(`CoordinatorLoadBalancer needs one zone per member; got ${props.members.length} members and ${props.zones.length} zones`);
    }
    const project = props.projectId;
    const region = props.region;
    this.address = new ComputeAddress(this, "Address", {
      project,
      region,
      name: props.names.address,
      subnetwork: props.subnetwork,
      addressType: "INTERNAL",
      purpose: "GCE_ENDPOINT",
    });
    const healthCheck = new ComputeRegionHealthCheck(this, "PatroniPrimary", {
      project,
      region,
      name: props.names.healthCheck,
      description: "Patroni's /primary: 200 on the coordinator group's leader only",
      // A failover completes within ttl (30 s); two failed checks 2 s apart take a demoted leader out fast, two good
      // ones bring the new leader in.
      checkIntervalSec: 2,
      timeoutSec: 2,
      healthyThreshold: 2,
      unhealthyThreshold: 2,
      httpHealthCheck: { port: props.patroniRestApiPort, requestPath: "/primary" },
      logConfig: { enable: true },
    });
    const byZone = new Map<string, ComputeInstance[]>();
    props.members.forEach((m, i) => byZone.set(props.zones[i]!, [...(byZone.get(props.zones[i]!) ?? []), m]));
    const groups = [...byZone.entries()].map(
      ([zone, members]) =>
        new ComputeInstanceGroup(this, `Members-${zone}`, {
          project,
          zone,
          name: props.names.instanceGroup(zone),
          description: "The coordinator group's members in this zone, as the load balancer's backend",
          network: props.network,
          instances: members.map((m) => m.selfLink),
        }),
    );
    const backend = new ComputeRegionBackendService(this, "Backend", {
      project,
      region,
      name: props.names.backendService,
      description: "The coordinator group's leader, as Patroni's /primary says",
      loadBalancingScheme: "INTERNAL",
      protocol: "TCP",
      healthChecks: [healthCheck.id],
      backend: groups.map((g) => ({ group: g.id, balancingMode: "CONNECTION" })),
      // Connections to a demoted leader are refused by PostgreSQL itself; no reason to hold them open.
      connectionDrainingTimeoutSec: 0,
      logConfig: { enable: true, sampleRate: 1 },
    });
    this.forwardingRule = new ComputeForwardingRule(this, "Postgres", {
      project,
      region,
      name: props.names.forwardingRule,
      description: "PostgreSQL on the coordinator group's leader",
      loadBalancingScheme: "INTERNAL",
      ipProtocol: "TCP",
      ports: [String(props.postgresPort)],
      ipAddress: this.address.address,
      network: props.network,
      subnetwork: props.subnetwork,
      backendService: backend.id,
      allowGlobalAccess: false,
    });
  }
}
