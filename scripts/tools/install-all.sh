#!/usr/bin/env bash
# Installs or builds every engine the tests run, each at its pinned version into its per-version cache outside the
# repository (scripts/tools/install-*.sh), before vitest starts: a cold build of Trivy or the Google provider takes
# tens of minutes on two cores, which belongs here, once, not inside a test's hook. A warm machine finds them all in
# well under a second.
#
#   scripts/tools/install-all.sh            # run by scripts/ensure-test-deps.sh, so by `pnpm test` and .ci/run
#
# The Go builds run two at a time (each builds one package at a time), the Python installs beside them. A tool its
# registry does not serve here (exit 3) is reported and skipped: its tests print the same reason. Any other failure
# fails this script, naming the tool, with the end of its log.
set -euo pipefail
cd "$(dirname "$0")"

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
started=$SECONDS
failed=()

# Runs one installer, recording its exit code beside its log.
install() {
  local tool="$1" rc=0
  bash "./install-${tool}.sh" >"$logs/${tool}.out" 2>"$logs/${tool}.log" || rc=$?
  echo "$rc" >"$logs/${tool}.rc"
}

# The three long Go builds first, side by side (Trivy and the provider build one package at a time, the Kubernetes
# control plane fills what is left); the short ones after; the Python installs in parallel with them.
install trivy &
install terraform-provider-google &
install kubernetes &
(install checkov; install schemathesis) &
wait
for tool in kube-score polaris deck terraform otelcol hydra fake-gcs-server; do install "$tool"; done

for rc_file in "$logs"/*.rc; do
  tool="$(basename "$rc_file" .rc)"
  rc="$(cat "$rc_file")"
  case "$rc" in
    0) ;;
    3) echo "install-all: ${tool} cannot be had here, its tests skip: $(tail -n 1 "$logs/${tool}.log")" >&2 ;;
    *)
      echo "install-all: installing ${tool} failed (exit ${rc}):" >&2
      tail -n 20 "$logs/${tool}.log" >&2
      failed+=("$tool")
      ;;
  esac
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "install-all: failed: ${failed[*]}" >&2
  exit 1
fi
if (( SECONDS - started > 5 )); then echo "install-all: engines ready in $((SECONDS - started)) s" >&2; fi
