import { IntOrString, Quantity, type Container, type PodSecurityContext, type Volume } from "../k8s.js";

/** Numeric ids: the restricted profile needs runAsNonRoot, which Kubernetes can only verify for a numeric user. */
export const RUN_AS_USER = 10001;
export const RUN_AS_GROUP = 10001;

export interface Resources {
  readonly cpuRequest: string;
  readonly cpuLimit: string;
  readonly memoryRequest: string;
  readonly memoryLimit: string;
  readonly ephemeralStorage: string;
}

export interface HttpProbe {
  readonly path: string;
  readonly port: number;
}

export interface HardenedContainerProps {
  readonly name: string;
  /** registry/repository:tag@sha256:digest. */
  readonly image: string;
  /** Overrides the image's entrypoint (rarely: prefer the image's own). */
  readonly command?: string[];
  readonly args?: string[];
  readonly ports?: { readonly name: string; readonly containerPort: number }[];
  readonly env?: Record<string, string>;
  readonly resources: Resources;
  /** Ready to take traffic (dependencies reachable). */
  readonly readiness: HttpProbe;
  /** Alive (the process answers); must not depend on the database, or an outage restarts every pod. */
  readonly liveness: HttpProbe;
  /** For programs that take a while to start: liveness waits for this first. */
  readonly startup?: HttpProbe & { readonly maxStartupSeconds: number };
  /** Directories the program writes to, each backed by an emptyDir (the root filesystem is read-only). */
  readonly writableDirs?: readonly string[];
  /** Persistent volumes the program writes to (a StatefulSet's claim), read-write. */
  readonly persistentMounts?: readonly { readonly volume: string; readonly mountPath: string }[];
  /** Secret or configuration files: volume name and mount path, always read-only. */
  readonly readOnlyMounts?: readonly { readonly volume: string; readonly mountPath: string }[];
}

const PIN = /^[a-z0-9][a-z0-9._/:-]*:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$/;

/**
 * The one container spec every workload uses: non-root numeric user, no privilege escalation, every capability
 * dropped, RuntimeDefault seccomp, read-only root filesystem, requests and limits for CPU, memory and ephemeral
 * storage, distinct readiness and liveness probes, and an image pinned by digest.
 */
export function hardenedContainer(props: HardenedContainerProps): { container: Container; volumes: Volume[] } {
  if (props.readiness.path === props.liveness.path) {
    throw new Error(`${props.name}: readiness and liveness must be different checks (a failing dependency must not restart the pod)`);
  }
  const probe = (p: HttpProbe, extra: { periodSeconds: number; failureThreshold: number; timeoutSeconds?: number }) => ({
    httpGet: { path: p.path, port: IntOrString.fromNumber(p.port) },
    timeoutSeconds: extra.timeoutSeconds ?? 2,
    periodSeconds: extra.periodSeconds,
    failureThreshold: extra.failureThreshold,
  });
  const { container, volumes } = hardenedTaskContainer(props, "writable");
  return {
    container: {
      ...container,
      ports: props.ports?.map((p) => ({ name: p.name, containerPort: p.containerPort, protocol: "TCP" })),
      readinessProbe: probe(props.readiness, { periodSeconds: 5, failureThreshold: 3 }),
      livenessProbe: probe(props.liveness, { periodSeconds: 10, failureThreshold: 6 }),
      startupProbe: props.startup ? probe(props.startup, { periodSeconds: 5, failureThreshold: Math.ceil(props.startup.maxStartupSeconds / 5) }) : undefined,
    },
    volumes,
  };
}

/** A container that runs to completion: an init container or a Job's. */
export type HardenedTaskProps = Omit<HardenedContainerProps, "readiness" | "liveness" | "startup" | "ports">;

/**
 * The same hardening for a container that runs to completion (an init container, a Job), without probes: there is
 * nothing to be ready for, and Kubernetes rejects probes on init containers. Its emptyDirs are named after it, so
 * they cannot collide with the main container's.
 */
export function hardenedTaskContainer(props: HardenedTaskProps, volumePrefix = `${props.name}-writable`): { container: Container; volumes: Volume[] } {
  if (!PIN.test(props.image)) throw new Error(`${props.name}: image "${props.image}" must be pinned as registry/repository:tag@sha256:<digest>`);
  const writable = (props.writableDirs ?? []).map((path, i) => ({ name: `${volumePrefix}-${i}`, path }));
  const r = props.resources;
  const container: Container = {
    name: props.name,
    image: props.image,
    imagePullPolicy: "IfNotPresent",
    command: props.command,
    args: props.args,
    env: Object.entries(props.env ?? {}).map(([name, value]) => ({ name, value })),
    resources: {
      requests: { cpu: Quantity.fromString(r.cpuRequest), memory: Quantity.fromString(r.memoryRequest), "ephemeral-storage": Quantity.fromString(r.ephemeralStorage) },
      limits: { cpu: Quantity.fromString(r.cpuLimit), memory: Quantity.fromString(r.memoryLimit), "ephemeral-storage": Quantity.fromString(r.ephemeralStorage) },
    },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RUN_AS_USER,
      runAsGroup: RUN_AS_GROUP,
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    volumeMounts: [
      ...writable.map((w) => ({ name: w.name, mountPath: w.path })),
      ...(props.persistentMounts ?? []).map((m) => ({ name: m.volume, mountPath: m.mountPath })),
      ...(props.readOnlyMounts ?? []).map((m) => ({ name: m.volume, mountPath: m.mountPath, readOnly: true })),
    ],
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
  const volumes: Volume[] = writable.map((w) => ({ name: w.name, emptyDir: { sizeLimit: Quantity.fromString("64Mi") } }));
  return { container, volumes };
}

export function hardenedPodSecurityContext(): PodSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: RUN_AS_USER,
    runAsGroup: RUN_AS_GROUP,
    fsGroup: RUN_AS_GROUP,
    seccompProfile: { type: "RuntimeDefault" },
  };
}
