import type { EnvironmentConfig } from "./schema.js";

/**
 * Third-party images: one version table, read by the Kubernetes charts (what runs) and the infrastructure (what
 * Binary Authorization admits). Every image runs pinned by tag and digest. A digest is recorded when the
 * tag is adopted, by resolving it against the registry (`crane digest kong:3.9.1`) on a machine with registry
 * access; this repository's build machines have none, so entries not yet resolved carry UNRESOLVED and synthesis
 * warns about them. The tenant-service image is pinned per environment in the config (release pipeline).
 */
export const UNRESOLVED_DIGEST = `sha256:${"0".repeat(64)}`;

export interface ImageEntry {
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
}

export const IMAGES = {
  kong: { repository: "docker.io/library/kong", tag: "3.9.1", digest: UNRESOLVED_DIGEST },
  hydra: { repository: "docker.io/oryd/hydra", tag: "v2.3.0", digest: UNRESOLVED_DIGEST },
  prometheus: { repository: "quay.io/prometheus/prometheus", tag: "v3.5.0", digest: UNRESOLVED_DIGEST },
  grafana: { repository: "docker.io/grafana/grafana", tag: "12.1.1", digest: UNRESOLVED_DIGEST },
  jaeger: { repository: "docker.io/jaegertracing/all-in-one", tag: "1.72.0", digest: UNRESOLVED_DIGEST },
  alertmanager: { repository: "quay.io/prometheus/alertmanager", tag: "v0.28.1", digest: UNRESOLVED_DIGEST },
  redisExporter: { repository: "docker.io/oliver006/redis_exporter", tag: "v1.74.0", digest: UNRESOLVED_DIGEST },
  kubeStateMetrics: { repository: "registry.k8s.io/kube-state-metrics/kube-state-metrics", tag: "v2.15.0", digest: UNRESOLVED_DIGEST },
  // The contrib distribution: the googlecloud exporter is not in the core one. scripts/tools/install-otelcol.sh builds
  // the same version's components to validate the configuration.
  otelCollector: { repository: "docker.io/otel/opentelemetry-collector-contrib", tag: "0.165.0", digest: UNRESOLVED_DIGEST },
} as const satisfies Record<string, ImageEntry>;

export function imageRef(name: keyof typeof IMAGES): string {
  const entry: ImageEntry = IMAGES[name];
  return `${entry.repository}:${entry.tag}@${entry.digest}`;
}

export function unresolvedImages(): string[] {
  return Object.entries(IMAGES)
    .filter(([, e]) => (e as ImageEntry).digest === UNRESOLVED_DIGEST)
    .map(([name, e]) => `${name} (${e.repository}:${e.tag})`);
}

/** registry/path/name of a reference, without its tag and digest. */
export function imageRepository(reference: string): string {
  const name = reference.split("@")[0]!;
  const slash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  return colon > slash ? name.slice(0, colon) : name;
}

/**
 * What Binary Authorization admits in an environment: the repository of every image the platform runs, the tenant
 * service's included, as allowlist name patterns. A trailing `*` does not cross a `/`, so `docker.io/library/kong*`
 * admits `docker.io/library/kong:3.9.1@sha256:...` but nothing under another path.
 */
export function admittedImagePatterns(config: Pick<EnvironmentConfig, "kubernetes">): string[] {
  const references = [...Object.values(IMAGES).map((e: ImageEntry) => e.repository), config.kubernetes.images.tenantService];
  return [...new Set(references.map((r) => `${imageRepository(r)}*`))].sort();
}

/**
 * Whether an image reference matches an allowlist name pattern as Binary Authorization reads it: exact, a trailing
 * `*` that does not cross a `/`, or a trailing `**` that does.
 */
export function imageAdmitted(reference: string, patterns: readonly string[]): boolean {
  return patterns.some((pattern) => {
    if (pattern.endsWith("**")) return reference.startsWith(pattern.slice(0, -2));
    if (pattern.endsWith("*")) {
      const prefix = pattern.slice(0, -1);
      return reference.startsWith(prefix) && !reference.slice(prefix.length).includes("/");
    }
    return reference === pattern;
  });
}
