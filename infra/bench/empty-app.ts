// The floor: an empty CDKTF app with one empty stack, synthesized the same way as the platform app.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, TerraformStack } from "cdktf";

const outdir = mkdtempSync(join(tmpdir(), "bench-empty-"));
const app = new App({ outdir });
new TerraformStack(app, "empty");
app.synth();
rmSync(outdir, { recursive: true, force: true });
process.stdout.write(JSON.stringify({ maxRssKb: process.resourceUsage().maxRSS }));
