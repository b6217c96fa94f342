/**
 * src/k8s.ts loads the Kubernetes API classes by name from cdk8s-plus-28's module (for speed, see there): a name the
 * module stops exporting would be undefined at run time, not a type error. This is where that shows.
 */
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import * as k8s from "../src/k8s.js";

describe("src/k8s.ts", () => {
  it("re-exports only names the cdk8s-plus-28 module defines, each a class", () => {
    const exported = Object.entries(k8s).filter(([name]) => name !== "K8S_MODULE");
    expect(exported.length).toBeGreaterThan(10);
    const module = createRequire(import.meta.url)(k8s.K8S_MODULE) as Record<string, unknown>;
    for (const [name, value] of exported) {
      expect(typeof value, `${name} is a class of ${k8s.K8S_MODULE}`).toBe("function");
      expect(value, name).toBe(module[name]);
    }
  });
});
