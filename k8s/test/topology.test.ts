/**
 * The NetworkPolicies name other charts' pods by `peers()` (src/topology.ts), built from the same workload table the
 * hardened constructs label their pods from. If the two ever drift, a policy would select nothing and silently cut
 * a path: here every peer's namespace and selector is checked against the controller that really runs those pods.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ENVIRONMENT_NAMES, loadEnvironment } from "@platform/config";
import { synthesizeEnvironment } from "../src/app.js";
import { WORKLOADS, peers, type WorkloadKey } from "../src/topology.js";

const dir = mkdtempSync(join(tmpdir(), "k8s-topology-"));
writeFileSync(join(dir, "empty.json"), "{}");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(ENVIRONMENT_NAMES)("%s: every peer a policy names", (name) => {
  const config = loadEnvironment(name, { env: {}, overrideFile: join(dir, "empty.json") });
  const { objects } = synthesizeEnvironment(config, join(dir, name));

  // The trace backend decides which of the two tracing workloads an environment runs (config monitoring.traceBackend).
  const runs = (key: WorkloadKey) =>
    key === "jaeger" ? config.monitoring.traceBackend === "jaeger" : key === "otelCollector" ? config.monitoring.traceBackend === "cloudTrace" : true;
  const keys = Object.keys(WORKLOADS) as WorkloadKey[];

  it.each(keys.filter((key) => !runs(key)))("%s: not run here, and no NetworkPolicy names its pods", (key) => {
    expect(objects.find((o) => o.metadata.name === WORKLOADS[key].name && (o.kind === "Deployment" || o.kind === "StatefulSet"))).toBeUndefined();
    const selector = JSON.stringify(peers(config)[key].selector);
    const naming = objects.filter((o) => o.kind === "NetworkPolicy" && JSON.stringify(o).includes(selector)).map((o) => o.metadata.name);
    expect(naming).toEqual([]);
  });

  it.each(keys.filter(runs))("%s: is where its controller runs, selected as it selects its pods", (key) => {
    const peer = peers(config)[key];
    const controller = objects.find((o) => (o.kind === "Deployment" || o.kind === "StatefulSet") && o.metadata.name === WORKLOADS[key].name) as
      | { metadata: { namespace: string }; spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> } } } }
      | undefined;
    expect(controller, `a Deployment or StatefulSet named ${WORKLOADS[key].name}`).toBeDefined();
    expect(peer.namespace).toBe(controller!.metadata.namespace);
    expect(peer.selector).toEqual(controller!.spec.selector.matchLabels);
    expect(controller!.spec.template.metadata.labels).toMatchObject(peer.selector);
  });
});
