/**
 * The Google provider bindings this app uses, in one place.
 *
 * Each module is loaded with require() by its deep path rather than through the package barrel or an ESM import:
 * the barrel loads all ~1,400 resource modules, and an ESM import of these large CommonJS files makes Node scan
 * each one for its named exports. Loading them this way roughly halves synthesis time and memory
 * (`pnpm bench:synth`). It is also the single seam to rename when moving to the cdktn fork.
 */
import { createRequire } from "node:module";
import { requireCommonJs } from "@platform/cli/commonjs";

import type * as BinaryAuthorizationPolicyModule from "@cdktf/provider-google/lib/binary-authorization-policy/index.js";
import type * as ComputeAddressModule from "@cdktf/provider-google/lib/compute-address/index.js";
import type * as ComputeDiskModule from "@cdktf/provider-google/lib/compute-disk/index.js";
import type * as ComputeDiskResourcePolicyAttachmentModule from "@cdktf/provider-google/lib/compute-disk-resource-policy-attachment/index.js";
import type * as ComputeFirewallModule from "@cdktf/provider-google/lib/compute-firewall/index.js";
import type * as ComputeGlobalAddressModule from "@cdktf/provider-google/lib/compute-global-address/index.js";
import type * as ComputeForwardingRuleModule from "@cdktf/provider-google/lib/compute-forwarding-rule/index.js";
import type * as ComputeInstanceGroupModule from "@cdktf/provider-google/lib/compute-instance-group/index.js";
import type * as ComputeRegionBackendServiceModule from "@cdktf/provider-google/lib/compute-region-backend-service/index.js";
import type * as ComputeRegionHealthCheckModule from "@cdktf/provider-google/lib/compute-region-health-check/index.js";
import type * as ComputeInstanceModule from "@cdktf/provider-google/lib/compute-instance/index.js";
import type * as ComputeNetworkModule from "@cdktf/provider-google/lib/compute-network/index.js";
import type * as ComputeProjectMetadataItemModule from "@cdktf/provider-google/lib/compute-project-metadata-item/index.js";
import type * as ComputeResourcePolicyModule from "@cdktf/provider-google/lib/compute-resource-policy/index.js";
import type * as ComputeRouterModule from "@cdktf/provider-google/lib/compute-router/index.js";
import type * as ComputeRouterNatModule from "@cdktf/provider-google/lib/compute-router-nat/index.js";
import type * as ComputeSubnetworkModule from "@cdktf/provider-google/lib/compute-subnetwork/index.js";
import type * as ContainerClusterModule from "@cdktf/provider-google/lib/container-cluster/index.js";
import type * as ContainerNodePoolModule from "@cdktf/provider-google/lib/container-node-pool/index.js";
import type * as DataGoogleProjectModule from "@cdktf/provider-google/lib/data-google-project/index.js";
import type * as DnsManagedZoneModule from "@cdktf/provider-google/lib/dns-managed-zone/index.js";
import type * as DnsRecordSetModule from "@cdktf/provider-google/lib/dns-record-set/index.js";
import type * as KmsCryptoKeyModule from "@cdktf/provider-google/lib/kms-crypto-key/index.js";
import type * as KmsCryptoKeyIamMemberModule from "@cdktf/provider-google/lib/kms-crypto-key-iam-member/index.js";
import type * as KmsKeyRingModule from "@cdktf/provider-google/lib/kms-key-ring/index.js";
import type * as PrivatecaCaPoolModule from "@cdktf/provider-google/lib/privateca-ca-pool/index.js";
import type * as PrivatecaCaPoolIamMemberModule from "@cdktf/provider-google/lib/privateca-ca-pool-iam-member/index.js";
import type * as PrivatecaCertificateAuthorityModule from "@cdktf/provider-google/lib/privateca-certificate-authority/index.js";
import type * as ProjectIamMemberModule from "@cdktf/provider-google/lib/project-iam-member/index.js";
import type * as ProjectServiceModule from "@cdktf/provider-google/lib/project-service/index.js";
import type * as ProviderModule from "@cdktf/provider-google/lib/provider/index.js";
import type * as RedisInstanceModule from "@cdktf/provider-google/lib/redis-instance/index.js";
import type * as SecretManagerSecretModule from "@cdktf/provider-google/lib/secret-manager-secret/index.js";
import type * as SecretManagerSecretIamMemberModule from "@cdktf/provider-google/lib/secret-manager-secret-iam-member/index.js";
import type * as SecretManagerSecretVersionModule from "@cdktf/provider-google/lib/secret-manager-secret-version/index.js";
import type * as ServiceAccountModule from "@cdktf/provider-google/lib/service-account/index.js";
import type * as ServiceAccountIamMemberModule from "@cdktf/provider-google/lib/service-account-iam-member/index.js";
import type * as ServiceNetworkingConnectionModule from "@cdktf/provider-google/lib/service-networking-connection/index.js";
import type * as SqlDatabaseModule from "@cdktf/provider-google/lib/sql-database/index.js";
import type * as SqlDatabaseInstanceModule from "@cdktf/provider-google/lib/sql-database-instance/index.js";
import type * as SqlUserModule from "@cdktf/provider-google/lib/sql-user/index.js";
import type * as StorageBucketModule from "@cdktf/provider-google/lib/storage-bucket/index.js";
import type * as StorageBucketIamMemberModule from "@cdktf/provider-google/lib/storage-bucket-iam-member/index.js";

const requireModule = createRequire(import.meta.url);

/**
 * Loads bindings as the plain CommonJS they are (jsii generates them), past the require hook of a TypeScript runner
 * and with source maps off (@platform/cli/commonjs): these 36 files are 9.7 MB, and tsx's scan of them alone was
 * about 10% of `pnpm synth` (`pnpm bench:synth`). Each id is a string literal, so that the main job's bundle
 * (scripts/bundle/) can inline the module: it rewrites `requireCommonJs(r, "id")` to `require("id")`.
 */
export const { BinaryAuthorizationPolicy } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/binary-authorization-policy") as typeof BinaryAuthorizationPolicyModule;
export type BinaryAuthorizationPolicy = BinaryAuthorizationPolicyModule.BinaryAuthorizationPolicy;
export const { ComputeAddress } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/compute-address") as typeof ComputeAddressModule;
export type ComputeAddress = ComputeAddressModule.ComputeAddress;
export const { ComputeDisk } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/compute-disk") as typeof ComputeDiskModule;
export type ComputeDisk = ComputeDiskModule.ComputeDisk;
export const { ComputeDiskResourcePolicyAttachment } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/compute-disk-resource-policy-attachment") as typeof ComputeDiskResourcePolicyAttachmentModule;
export type ComputeDiskResourcePolicyAttachment = ComputeDiskResourcePolicyAttachmentModule.ComputeDiskResourcePolicyAttachment;
export const { ComputeFirewall } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/compute-firewall") as typeof ComputeFirewallModule;
export type ComputeFirewall = ComputeFirewallModule.ComputeFirewall;
export const { ComputeGlobalAddress } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/compute-global-address") as typeof ComputeGlobalAddressModule;
export type ComputeGlobalAddress = ComputeGlobalAddressModule.ComputeGlobalAddress;
export const { ComputeForwardingRule } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/compute-forwarding-rule") as typeof ComputeForwardingRuleModule;
export type ComputeForwardingRule = ComputeForwardingRuleModule.ComputeForwardingRule;
export const { ComputeInstanceGroup } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/compute-instance-group") as typeof ComputeInstanceGroupModule;
export type ComputeInstanceGroup = ComputeInstanceGroupModule.ComputeInstanceGroup;
export const { ComputeRegionBackendService } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/compute-region-backend-service") as typeof ComputeRegionBackendServiceModule;
export type ComputeRegionBackendService = ComputeRegionBackendServiceModule.ComputeRegionBackendService;
export const { ComputeRegionHealthCheck } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/compute-region-health-check") as typeof ComputeRegionHealthCheckModule;
export type ComputeRegionHealthCheck = ComputeRegionHealthCheckModule.ComputeRegionHealthCheck;
export const { ComputeInstance } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/compute-instance") as typeof ComputeInstanceModule;
export type ComputeInstance = ComputeInstanceModule.ComputeInstance;
export const { ComputeNetwork } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/compute-network") as typeof ComputeNetworkModule;
export type ComputeNetwork = ComputeNetworkModule.ComputeNetwork;
export const { ComputeProjectMetadataItem } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/compute-project-metadata-item") as typeof ComputeProjectMetadataItemModule;
export type ComputeProjectMetadataItem = ComputeProjectMetadataItemModule.ComputeProjectMetadataItem;
export const { ComputeResourcePolicy } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/compute-resource-policy") as typeof ComputeResourcePolicyModule;
export type ComputeResourcePolicy = ComputeResourcePolicyModule.ComputeResourcePolicy;
export const { ComputeRouter } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/compute-router") as typeof ComputeRouterModule;
export type ComputeRouter = ComputeRouterModule.ComputeRouter;
export const { ComputeRouterNat } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/compute-router-nat") as typeof ComputeRouterNatModule;
export type ComputeRouterNat = ComputeRouterNatModule.ComputeRouterNat;
export const { ComputeSubnetwork } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/compute-subnetwork") as typeof ComputeSubnetworkModule;
export type ComputeSubnetwork = ComputeSubnetworkModule.ComputeSubnetwork;
export const { ContainerCluster } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/container-cluster") as typeof ContainerClusterModule;
export type ContainerCluster = ContainerClusterModule.ContainerCluster;
export const { ContainerNodePool } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/container-node-pool") as typeof ContainerNodePoolModule;
export type ContainerNodePool = ContainerNodePoolModule.ContainerNodePool;
export const { DataGoogleProject } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/data-google-project") as typeof DataGoogleProjectModule;
export type DataGoogleProject = DataGoogleProjectModule.DataGoogleProject;
export const { DnsManagedZone } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/dns-managed-zone") as typeof DnsManagedZoneModule;
export type DnsManagedZone = DnsManagedZoneModule.DnsManagedZone;
export const { DnsRecordSet } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/dns-record-set") as typeof DnsRecordSetModule;
export type DnsRecordSet = DnsRecordSetModule.DnsRecordSet;
export const { KmsCryptoKey } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/kms-crypto-key") as typeof KmsCryptoKeyModule;
export type KmsCryptoKey = KmsCryptoKeyModule.KmsCryptoKey;
export const { KmsCryptoKeyIamMember } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/kms-crypto-key-iam-member") as typeof KmsCryptoKeyIamMemberModule;
export type KmsCryptoKeyIamMember = KmsCryptoKeyIamMemberModule.KmsCryptoKeyIamMember;
export const { KmsKeyRing } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/kms-key-ring") as typeof KmsKeyRingModule;
export type KmsKeyRing = KmsKeyRingModule.KmsKeyRing;
export const { ProjectIamMember } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/project-iam-member") as typeof ProjectIamMemberModule;
export type ProjectIamMember = ProjectIamMemberModule.ProjectIamMember;
export const { ProjectService } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/project-service") as typeof ProjectServiceModule;
export type ProjectService = ProjectServiceModule.ProjectService;
export const { GoogleProvider } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/provider") as typeof ProviderModule;
export type GoogleProvider = ProviderModule.GoogleProvider;
export const { RedisInstance } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/redis-instance") as typeof RedisInstanceModule;
export type RedisInstance = RedisInstanceModule.RedisInstance;
export const { SecretManagerSecret } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/secret-manager-secret") as typeof SecretManagerSecretModule;
export type SecretManagerSecret = SecretManagerSecretModule.SecretManagerSecret;
export const { SecretManagerSecretIamMember } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/secret-manager-secret-iam-member") as typeof SecretManagerSecretIamMemberModule;
export type SecretManagerSecretIamMember = SecretManagerSecretIamMemberModule.SecretManagerSecretIamMember;
export const { SecretManagerSecretVersion } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/secret-manager-secret-version") as typeof SecretManagerSecretVersionModule;
export type SecretManagerSecretVersion = SecretManagerSecretVersionModule.SecretManagerSecretVersion;
export const { ServiceAccount } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/service-account") as typeof ServiceAccountModule;
export type ServiceAccount = ServiceAccountModule.ServiceAccount;
export const { ServiceAccountIamMember } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/service-account-iam-member") as typeof ServiceAccountIamMemberModule;
export type ServiceAccountIamMember = ServiceAccountIamMemberModule.ServiceAccountIamMember;
export const { ServiceNetworkingConnection } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/service-networking-connection") as typeof ServiceNetworkingConnectionModule;
export type ServiceNetworkingConnection = ServiceNetworkingConnectionModule.ServiceNetworkingConnection;
export const { StorageBucket } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/storage-bucket") as typeof StorageBucketModule;
export type StorageBucket = StorageBucketModule.StorageBucket;
export type StorageBucketConfig = StorageBucketModule.StorageBucketConfig;
export const { StorageBucketIamMember } = requireCommonJs(requireModule, "@cdktf/provider-google/lib/storage-bucket-iam-member") as typeof StorageBucketIamMemberModule;
export type StorageBucketIamMember = StorageBucketIamMemberModule.StorageBucketIamMember;

// The postgres engine (config database.engine): Cloud SQL and the CA that signs its server certificate. Loaded only
// by a stack that uses them (stack.ts), so a Citus-only synthesis does not pay for these bindings.
export const loadCloudSqlBindings = () => ({
  ...(requireCommonJs(requireModule, "@cdktf/provider-google/lib/sql-database-instance") as typeof SqlDatabaseInstanceModule),
  ...(requireCommonJs(requireModule, "@cdktf/provider-google/lib/sql-database") as typeof SqlDatabaseModule),
  ...(requireCommonJs(requireModule, "@cdktf/provider-google/lib/sql-user") as typeof SqlUserModule),
  ...(requireCommonJs(requireModule, "@cdktf/provider-google/lib/privateca-ca-pool") as typeof PrivatecaCaPoolModule),
  ...(requireCommonJs(requireModule, "@cdktf/provider-google/lib/privateca-ca-pool-iam-member") as typeof PrivatecaCaPoolIamMemberModule),
  ...(requireCommonJs(requireModule, "@cdktf/provider-google/lib/privateca-certificate-authority") as typeof PrivatecaCertificateAuthorityModule),
});

