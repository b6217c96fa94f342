// Installs the system packages the test suites need when they are missing (Debian: apt-get), so `pnpm test`
// works on a fresh machine. Prints what it does; never prompts.
import { execSync } from "node:child_process";

const needed = [
  // [command that must exist, Debian package that provides it]
  ["terraform", null], // installed by the machine image; not in Debian's archive
];
const missing = needed.filter(([cmd, pkg]) => pkg && !has(cmd)).map(([, pkg]) => pkg);
if (missing.length > 0) {
  if (process.getuid?.() !== 0) {
    console.error(`Missing packages for the tests: ${missing.join(" ")}. Install them: sudo apt-get install -y ${missing.join(" ")}`);
    process.exit(1);
  }
  console.log(`Installing ${missing.join(" ")} with apt-get ...`);
  execSync(`apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing.join(" ")}`, { stdio: "inherit" });
}

function has(cmd) {
  try {
    execSync(`command -v ${cmd}`, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
