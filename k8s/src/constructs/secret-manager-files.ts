import { ApiObject } from "cdk8s";
import { Construct } from "constructs";
import type { Volume } from "../k8s.js";

/** Where every workload mounts its Secret Manager files. */
export const SECRETS_DIR = "/var/run/secrets/platform";

/**
 * Memorystore's AUTH string and the instance's CA, as every Redis client (tenant service and worker, Kong,
 * redis_exporter) mounts them: one file name each, so all of them pin the same CA.
 */
export const MEMORYSTORE_FILES = { auth: "redis-auth", ca: "redis-ca.crt" } as const;

export interface SecretManagerFilesProps {
  readonly namespace: string;
  readonly name: string;
  readonly projectId: string;
  /** Secret Manager secret id → file name in the mounted directory. */
  readonly files: Record<string, string>;
}

/**
 * Secret Manager secrets as files, through GKE's Secret Manager CSI add-on and the pod's Workload Identity: no
 * Kubernetes Secret holds the values, and the Google service account decides what a pod may read.
 */
export class SecretManagerFiles extends Construct {
  readonly volume: Volume;

  constructor(scope: Construct, id: string, props: SecretManagerFilesProps) {
    super(scope, id);
    new ApiObject(this, "Resource", {
      apiVersion: "secrets-store.csi.x-k8s.io/v1",
      kind: "SecretProviderClass",
      metadata: { name: props.name, namespace: props.namespace },
      spec: {
        provider: "gke",
        parameters: {
          secrets: Object.entries(props.files)
            .map(([secret, path]) => `- resourceName: "projects/${props.projectId}/secrets/${secret}/versions/latest"\n  path: "${path}"`)
            .join("\n"),
        },
      },
    });
    this.volume = { name: props.name, csi: { driver: "secrets-store-gke.csi.k8s.io", readOnly: true, volumeAttributes: { secretProviderClass: props.name } } };
  }
}
