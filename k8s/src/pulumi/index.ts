/**
 * The second way to apply the manifests: a Pulumi program over the same synthesized files, for teams that want
 * Pulumi's preview and state. Run `pnpm synth` first, then from k8s/pulumi: `pulumi stack select dev && pulumi up`.
 * One ConfigGroup per file; each waits for the one before (the setup file with the namespaces first).
 */
import * as pulumi from "@pulumi/pulumi";
import { applyManifests } from "./apply.js";

const config = new pulumi.Config("platform");
const environment = config.get("environment") ?? pulumi.getStack();
export const groups = applyManifests({ environment, distDir: new URL("../../dist", import.meta.url).pathname });
