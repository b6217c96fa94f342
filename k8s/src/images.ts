/**
 * Third-party images: one version table. Every image runs pinned by tag and digest. A digest is recorded when the
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
