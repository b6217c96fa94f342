#!/usr/bin/env bash
# Installs Checkov (https://www.checkov.io, PyPI package `checkov`) at a pinned version into a Python virtual
# environment in a cache outside the repository, once per version, and prints the path of its `checkov`.
# infra/test/checkov.test.ts runs it, then runs Checkov's Terraform checks over every synthesized environment.
#
#   scripts/tools/install-checkov.sh                      # prints e.g. ~/.cache/platform-tools/checkov/3.3.30/venv/bin/checkov
#   CHECKOV_VERSION=3.3.29 scripts/tools/install-checkov.sh
#
# Exit codes: 0 installed or already cached (path on stdout); 3 Checkov cannot be had here (no Python 3.9+ with venv,
# or PyPI does not serve checkov at that version), said on stderr, so callers skip; 1 anything else (a failed install).
#
# Only PyPI, through pip: Checkov's wheel and its dependencies' wheels. A warm cache is reused without the network.
# The install is niced: the machines have two cores, shared with other builds.
set -euo pipefail

CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/platform-tools/checkov/${CHECKOV_VERSION}"
venv="$cache/venv"
binary="$venv/bin/checkov"
# Written last, after `checkov --version` answered: a half-built venv (an interrupted install) is never reused.
done_marker="$cache/.installed"

# Cheap on purpose (checkov --version takes seconds to import): the marker, and the venv's interpreter still runs
# (a venv points at the Python it was made with, which an upgrade may have removed).
installed() {
  [[ -f "$done_marker" && -x "$binary" ]] && "$venv/bin/python" -c '' >/dev/null 2>&1
}

if installed; then
  echo "$binary"
  exit 0
fi

python=""
for candidate in "${PYTHON:-}" python3 python; do
  [[ -n "$candidate" ]] || continue
  if command -v "$candidate" >/dev/null 2>&1 &&
    "$candidate" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 9) else 1)' >/dev/null 2>&1; then
    python="$candidate"
    break
  fi
done
if [[ -z "$python" ]]; then
  echo "install-checkov: no Python 3.9+ with venv and ensurepip on PATH (Debian: apt-get install python3-venv); Checkov is a Python package" >&2
  exit 3
fi

mkdir -p "$cache"
# Two test runs at once: the second waits for the first's install instead of building into the same venv.
exec 9>"$cache/.lock"
flock 9
if installed; then
  echo "$binary"
  exit 0
fi

rm -rf "$venv" "$done_marker"
started=$SECONDS
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "install-checkov: installing checkov==${CHECKOV_VERSION} from PyPI into $venv (once per version)" >&2
if ! "$python" -m venv "$venv" >"$log" 2>&1; then
  cat "$log" >&2
  rm -rf "$venv"
  echo "install-checkov: $python could not create a virtual environment (output above)" >&2
  exit 1
fi
# pip's own version check and cache stay out of the way: the venv is the cache.
pip_install=("$venv/bin/python" -m pip install --disable-pip-version-check --no-input --no-cache-dir --quiet)
if ! nice -n 10 "${pip_install[@]}" "checkov==${CHECKOV_VERSION}" >"$log" 2>&1; then
  rm -rf "$venv"
  if grep -qE 'No matching distribution found for checkov|Could not find a version that satisfies the requirement checkov' "$log"; then
    # pip's message lists every version PyPI has; the last line says what it could not find.
    echo "install-checkov: PyPI does not serve checkov==${CHECKOV_VERSION} here: $(grep -m1 -oE 'No matching distribution found for [^ ]+' "$log" || tail -n 1 "$log")" >&2
    exit 3
  fi
  if grep -qiE 'Failed to establish a new connection|Temporary failure in name resolution|Network is unreachable|Could not fetch URL' "$log"; then
    echo "install-checkov: PyPI cannot be reached: $(grep -m1 -iE 'connection|resolution|unreachable|fetch' "$log")" >&2
    exit 3
  fi
  cat "$log" >&2
  echo "install-checkov: pip install checkov==${CHECKOV_VERSION} failed (output above)" >&2
  exit 1
fi
if ! version="$("$binary" --version 2>"$log")" || [[ "$version" != "$CHECKOV_VERSION" ]]; then
  cat "$log" >&2
  echo "install-checkov: the installed checkov answers --version with '${version:-nothing}', not ${CHECKOV_VERSION}" >&2
  exit 1
fi
touch "$done_marker"
echo "install-checkov: installed in $((SECONDS - started)) s: $binary" >&2
echo "$binary"
