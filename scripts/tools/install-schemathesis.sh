#!/usr/bin/env bash
# Installs Schemathesis (https://schemathesis.readthedocs.io, PyPI package `schemathesis`) at a pinned version into a
# Python virtual environment in a cache outside the repository, once per version, and prints the path of its `st`.
# services/tenant-service/test/schemathesis.test.ts runs it, then runs Schemathesis against the tenant service's
# /openapi.json on loopback.
#
#   scripts/tools/install-schemathesis.sh        # prints e.g. ~/.cache/platform-tools/schemathesis/4.32.5/venv/bin/st
#   SCHEMATHESIS_VERSION=4.32.4 scripts/tools/install-schemathesis.sh
#
# Exit codes: 0 installed or already cached (path on stdout); 3 Schemathesis cannot be had here (no Python 3.9+ with
# venv, or PyPI does not serve schemathesis at that version or cannot be reached), said on stderr, so callers skip;
# 1 anything else (a failed install).
#
# Only PyPI, through pip: Schemathesis's wheel and its dependencies' wheels. A warm cache is reused without the
# network. The install is niced: the machines have two cores, shared with other builds.
set -euo pipefail

SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/platform-tools/schemathesis/${SCHEMATHESIS_VERSION}"
venv="$cache/venv"
binary="$venv/bin/st"
# Written last, after `st --version` answered with the pinned version: a half-built venv is never reused.
done_marker="$cache/.installed"

# `st --version` prints "st, version 4.32.5".
installed() {
  [[ -f "$done_marker" && -x "$binary" ]] && [[ "$("$binary" --version 2>/dev/null)" == *" ${SCHEMATHESIS_VERSION}" ]]
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
  echo "install-schemathesis: no Python 3.9+ with venv and ensurepip on PATH (Debian: apt-get install python3-venv); Schemathesis is a Python package" >&2
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
echo "install-schemathesis: installing schemathesis==${SCHEMATHESIS_VERSION} from PyPI into $venv (once per version)" >&2
if ! "$python" -m venv "$venv" >"$log" 2>&1; then
  cat "$log" >&2
  rm -rf "$venv"
  echo "install-schemathesis: $python could not create a virtual environment (output above)" >&2
  exit 1
fi
# pip's own version check and cache stay out of the way: the venv is the cache.
pip_install=("$venv/bin/python" -m pip install --disable-pip-version-check --no-input --no-cache-dir --quiet)
if ! nice -n 10 "${pip_install[@]}" "schemathesis==${SCHEMATHESIS_VERSION}" >"$log" 2>&1; then
  rm -rf "$venv"
  if grep -qE 'No matching distribution found for schemathesis|Could not find a version that satisfies the requirement schemathesis' "$log"; then
    echo "install-schemathesis: PyPI does not serve schemathesis==${SCHEMATHESIS_VERSION} here: $(grep -m1 -E '^ERROR' "$log" || tail -n 1 "$log")" >&2
    exit 3
  fi
  if grep -qiE 'Failed to establish a new connection|Temporary failure in name resolution|Network is unreachable|Could not fetch URL' "$log"; then
    echo "install-schemathesis: PyPI cannot be reached: $(grep -m1 -iE 'connection|resolution|unreachable|fetch' "$log")" >&2
    exit 3
  fi
  cat "$log" >&2
  echo "install-schemathesis: pip install schemathesis==${SCHEMATHESIS_VERSION} failed (output above)" >&2
  exit 1
fi
if ! version="$("$binary" --version 2>"$log")" || [[ "$version" != *" ${SCHEMATHESIS_VERSION}" ]]; then
  cat "$log" >&2
  echo "install-schemathesis: the installed st answers --version with '${version:-nothing}', not ${SCHEMATHESIS_VERSION}" >&2
  exit 1
fi
touch "$done_marker"
echo "install-schemathesis: installed in $((SECONDS - started)) s: $binary" >&2
echo "$binary"
