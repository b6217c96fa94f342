import { Construct } from "constructs";
import { KmsCryptoKey, KmsCryptoKeyIamMember, KmsKeyRing } from "../google.js";
import { skipCheckov } from "../policy/checkov-skips.js";

export type PlatformKeyId = "gkeSecrets" | "disks" | "backups" | "exports" | "redis";

export interface PlatformKeysProps {
  readonly projectId: string;
  readonly location: string;
  readonly keyRingName: string;
  readonly keyNames: Readonly<Record<PlatformKeyId, string>>;
  /** Google service agents that encrypt with each key on the platform's behalf. */
  readonly agents: { readonly gke: string; readonly compute: string; readonly storage: string; readonly redis: string };
  /**
   * The postgres engine's key (Cloud SQL's data, backups and logs), granted to Cloud SQL's service agent.
   * @default no key: the Citus engine keeps its data on disks, under the disks key
   */
  readonly cloudSql?: { readonly name: string; readonly agent: string };
  readonly labels: Record<string, string>;
  /** Refuse `terraform destroy` of the keys: destroying a key makes everything encrypted with it unreadable. */
  readonly preventDestroy: boolean;
  /** @default 90 days */
  readonly rotationPeriodDays?: number;
}

/**
 * Customer-managed keys, one per kind of data so each can be rotated, audited or revoked on its own: Kubernetes
 * secrets (application-layer encryption), persistent disks, backups, tenant exports, Memorystore.
 */
export class PlatformKeys extends Construct {
  readonly keyRing: KmsKeyRing;
  readonly gkeSecrets: KmsCryptoKey;
  readonly disks: KmsCryptoKey;
  readonly backups: KmsCryptoKey;
  /** Tenant exports: copies of one tenant's rows handed out by signed URL, revocable apart from the backups. */
  readonly exports: KmsCryptoKey;
  readonly redis: KmsCryptoKey;
  /** The service agents' grants: resources encrypted with a key must depend on its grant. */
  readonly grants: Record<PlatformKeyId, KmsCryptoKeyIamMember>;
  /** Where props.cloudSql is given: the key and its grant to Cloud SQL's service agent. */
  readonly cloudSql?: { readonly key: KmsCryptoKey; readonly grant: KmsCryptoKeyIamMember };

  constructor(scope: Construct, id: string, props: PlatformKeysProps) {
    super(scope, id);
    const rotationPeriod = `${(props.rotationPeriodDays ?? 90) * 86400}s`;
    this.keyRing = new KmsKeyRing(this, "KeyRing", { project: props.projectId, name: props.keyRingName, location: props.location });
    const grants: Partial<Record<PlatformKeyId | "cloudSql", KmsCryptoKeyIamMember>> = {};
    const key = (keyId: PlatformKeyId | "cloudSql", name: string, agent: string): KmsCryptoKey => {
      const cryptoKey = new KmsCryptoKey(this, keyId, {
        name,
        keyRing: this.keyRing.id,
        purpose: "ENCRYPT_DECRYPT",
        rotationPeriod,
        labels: props.labels,
        lifecycle: { preventDestroy: props.preventDestroy },
      });
      if (!props.preventDestroy) {
        skipCheckov(cryptoKey, {
          id: "CKV_GCP_82",
          reason:
            "This environment is torn down with `cdktf destroy` (docs/DEPLOYMENT.md, Tear down), which prevent_destroy " +
            "would refuse; Google never deletes a key, it schedules its versions for destruction. Production's keys refuse destroy",
        });
      }
      grants[keyId] = new KmsCryptoKeyIamMember(this, `${keyId}Agent`, {
        cryptoKeyId: cryptoKey.id,
        role: "roles/cloudkms.cryptoKeyEncrypterDecrypter",
        member: `serviceAccount:${agent}`,
      });
      return cryptoKey;
    };
    this.gkeSecrets = key("gkeSecrets", props.keyNames.gkeSecrets, props.agents.gke);
    this.disks = key("disks", props.keyNames.disks, props.agents.compute);
    this.backups = key("backups", props.keyNames.backups, props.agents.storage);
    this.exports = key("exports", props.keyNames.exports, props.agents.storage);
    this.redis = key("redis", props.keyNames.redis, props.agents.redis);
    if (props.cloudSql) {
      const cloudSqlKey = key("cloudSql", props.cloudSql.name, props.cloudSql.agent);
      this.cloudSql = { key: cloudSqlKey, grant: grants.cloudSql! };
    }
    this.grants = { gkeSecrets: grants.gkeSecrets!, disks: grants.disks!, backups: grants.backups!, exports: grants.exports!, redis: grants.redis! };
  }
}
