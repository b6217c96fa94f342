import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ENVIRONMENT_NAMES, IMAGES, admittedImagePatterns, imageAdmitted, imageRef, imageRepository, loadEnvironment } from "../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "config-images-"));
writeFileSync(join(dir, "empty.json"), "{}");
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hermeticConfigs = () => ENVIRONMENT_NAMES.map((name) => loadEnvironment(name, { env: {}, overrideFile: join(dir, "empty.json") }));

describe("image admission (what Binary Authorization allows)", () => {
  it("takes the repository of a reference with a registry port, tag and digest", () => {
    expect(imageRepository("registry.example.com:5000/team/app:1.2@sha256:" + "a".repeat(64))).toBe("registry.example.com:5000/team/app");
    expect(imageRepository("docker.io/library/kong:3.9.1")).toBe("docker.io/library/kong");
    expect(imageRepository("registry.example.com:5000/team/app")).toBe("registry.example.com:5000/team/app");
  });

  it("matches a trailing * within one path segment, ** across segments, anything else exactly", () => {
    const kong = `docker.io/library/kong:3.9.1@sha256:${"0".repeat(64)}`;
    expect(imageAdmitted(kong, ["docker.io/library/kong*"])).toBe(true);
    expect(imageAdmitted("docker.io/library/kong/evil:1", ["docker.io/library/kong*"])).toBe(false);
    expect(imageAdmitted("docker.io/evil/kong:1", ["docker.io/library/kong*"])).toBe(false);
    expect(imageAdmitted("docker.io/library/kong/evil:1", ["docker.io/library/kong**"])).toBe(true);
    expect(imageAdmitted(kong, [kong])).toBe(true);
    expect(imageAdmitted(kong, ["docker.io/library/kong"])).toBe(false);
  });

  it("admits every pinned third-party image and the environment's tenant service, and nothing from another repository", () => {
    for (const config of hermeticConfigs()) {
      const patterns = admittedImagePatterns(config);
      for (const name of Object.keys(IMAGES) as (keyof typeof IMAGES)[]) expect(imageAdmitted(imageRef(name), patterns), name).toBe(true);
      expect(imageAdmitted(config.kubernetes.images.tenantService, patterns)).toBe(true);
      expect(imageAdmitted(`docker.io/library/nginx:1.27@sha256:${"0".repeat(64)}`, patterns)).toBe(false);
      expect(patterns.every((p) => p.endsWith("*") && !p.endsWith("**"))).toBe(true);
    }
  });
});
