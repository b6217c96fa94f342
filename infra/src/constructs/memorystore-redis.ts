import { Construct } from "constructs";
import { DnsRecordSet, RedisInstance, SecretManagerSecret, SecretManagerSecretVersion } from "../google.js";
import type { DnsManagedZone } from "../google.js";
import type { ITerraformDependable } from "cdktf";

export interface MemorystoreRedisProps {
  readonly projectId: string;
  readonly name: string;
  readonly region: string;
  /** Primary zone and the zone the HA replica fails over to. */
  readonly zones: readonly string[];
  readonly network: string;
  readonly tier: "BASIC" | "STANDARD_HA";
  readonly memorySizeGb: number;
  readonly version: string;
  readonly readReplicas: number;
  readonly maintenanceWindow: { readonly day: string; readonly hour: number };
  /** Secret ids the AUTH string and the server CA are published to, for the workloads to read. */
  readonly authSecretId: string;
  readonly caSecretId: string;
  readonly dnsZone: DnsManagedZone;
  /** Host name in the private zone, e.g. redis.db.internal. */
  readonly host: string;
  /**
   * Cloud KMS key the instance's data at rest is encrypted with, in the instance's region. Memorystore takes it only
   * at creation: changing it replaces the instance.
   */
  readonly encryptionKey: string;
  readonly labels: Record<string, string>;
  /** Private Service Access, and the Memorystore service agent's grant on the key, must exist before the instance. */
  readonly dependsOn: ITerraformDependable[];
}

/**
 * Memorystore for Redis on Private Service Access with AUTH and TLS (SERVER_AUTHENTICATION, port 6378), RDB
 * persistence encrypted with the platform's own key, HA replicas in staging and production. The AUTH string and CA are copied into Secret Manager by
 * reference: workloads read them there, never from Terraform outputs.
 */
export class MemorystoreRedis extends Construct {
  readonly instance: RedisInstance;
  readonly authSecret: SecretManagerSecret;
  readonly caSecret: SecretManagerSecret;

  constructor(scope: Construct, id: string, props: MemorystoreRedisProps) {
    super(scope, id);
    const ha = props.tier === "STANDARD_HA";
    if (!ha && props.readReplicas > 0) {
      throw new Error(`${props.name}: read replicas need tier STANDARD_HA (got ${props.tier} with ${props.readReplicas} replicas)`);
    }
    this.instance = new RedisInstance(this, "Resource", {
      project: props.projectId,
      name: props.name,
      region: props.region,
      tier: props.tier,
      memorySizeGb: props.memorySizeGb,
      redisVersion: props.version,
      locationId: props.zones[0],
      alternativeLocationId: ha ? props.zones[1] : undefined,
      authorizedNetwork: props.network,
      connectMode: "PRIVATE_SERVICE_ACCESS",
      authEnabled: true,
      transitEncryptionMode: "SERVER_AUTHENTICATION",
      customerManagedKey: props.encryptionKey,
      replicaCount: ha && props.readReplicas > 0 ? props.readReplicas : undefined,
      readReplicasMode: ha && props.readReplicas > 0 ? "READ_REPLICAS_ENABLED" : undefined,
      persistenceConfig: { persistenceMode: "RDB", rdbSnapshotPeriod: "ONE_HOUR" },
      maintenancePolicy: {
        weeklyMaintenanceWindow: [{ day: props.maintenanceWindow.day, startTime: { hours: props.maintenanceWindow.hour, minutes: 0 } }],
      },
      labels: props.labels,
      dependsOn: props.dependsOn,
    });

    const publish = (secretKey: string, secretId: string, data: string): SecretManagerSecret => {
      const secret = new SecretManagerSecret(this, secretKey, {
        project: props.projectId,
        secretId,
        replication: { auto: {} },
        labels: props.labels,
      });
      new SecretManagerSecretVersion(this, `${secretKey}Version`, { secret: secret.id, secretData: data });
      return secret;
    };
    this.authSecret = publish("AuthSecret", props.authSecretId, this.instance.authString);
    this.caSecret = publish("CaSecret", props.caSecretId, this.instance.serverCaCerts.get(0).cert);

    new DnsRecordSet(this, "DnsRecord", {
      project: props.projectId,
      managedZone: props.dnsZone.name,
      name: `${props.host}.`,
      type: "A",
      ttl: 60,
      rrdatas: [this.instance.host],
    });
  }
}
