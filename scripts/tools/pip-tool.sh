#!/usr/bin/env bash
# Sourced by scripts/tools/install-{checkov,schemathesis}.sh: installs one Python tool from PyPI at a pinned version
# into a virtual environment in ${XDG_CACHE_HOME:-~/.cache}/platform-tools/<tool>/<version>/venv, once per version,
# and prints the path of its command.
#
#   install_pip_tool TOOL PACKAGE VERSION COMMAND
#
# Exit codes: 0 installed or already cached (path on stdout); 3 the tool cannot be had here (no Python 3.9+ with venv,
# PyPI does not serve the package at that version, or cannot be reached), said on stderr so tests skip with that
# reason; 1 anything else (a failed install).
#
# Only PyPI, through pip: the package's wheel and its dependencies'. A warm cache is reused without the network. The
# install is niced (two cores, shared with other builds) and locked, so two test runs at once never build into the
# same venv; a marker written only after COMMAND --version answered the pinned version means a half-built venv (an
# interrupted install) is never reused.
set -euo pipefail

install_pip_tool() {
  local tool="$1" package="$2" version="$3" command="$4"
  local cache="${XDG_CACHE_HOME:-$HOME/.cache}/platform-tools/${tool}/${version}"
  local venv="$cache/venv"
  local binary="$venv/bin/$command"
  local done_marker="$cache/.installed"

  # Cheap on purpose (some tools take seconds to import): the marker, and the venv's interpreter still runs (a venv
  # points at the Python it was made with, which an upgrade may have removed).
  installed() { [[ -f "$done_marker" && -x "$binary" ]] && "$venv/bin/python" -c '' >/dev/null 2>&1; }

  if installed; then
    echo "$binary"
    return 0
  fi

  local python="" candidate
  for candidate in "${PYTHON:-}" python3 python; do
    [[ -n "$candidate" ]] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 9) else 1)' >/dev/null 2>&1; then
      python="$candidate"
      break
    fi
  done
  if [[ -z "$python" ]]; then
    echo "install-${tool}: no Python 3.9+ with venv and ensurepip on PATH (Debian: apt-get install python3-venv); ${package} is a Python package" >&2
    return 3
  fi

  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  if installed; then
    echo "$binary"
    return 0
  fi

  rm -rf "$venv" "$done_marker"
  local started=$SECONDS log
  log="$(mktemp)"
  echo "install-${tool}: installing ${package}==${version} from PyPI into $venv (once per version)" >&2
  if ! "$python" -m venv "$venv" >"$log" 2>&1; then
    cat "$log" >&2
    rm -rf "$venv" "$log"
    echo "install-${tool}: $python could not create a virtual environment (output above)" >&2
    return 1
  fi
  # pip's own version check and cache stay out of the way: the venv is the cache.
  if ! nice -n 10 "$venv/bin/python" -m pip install --disable-pip-version-check --no-input --no-cache-dir --quiet "${package}==${version}" >"$log" 2>&1; then
    rm -rf "$venv"
    if grep -qE "No matching distribution found for ${package}|Could not find a version that satisfies the requirement ${package}" "$log"; then
      echo "install-${tool}: PyPI does not serve ${package}==${version} here: $(grep -m1 -oE 'No matching distribution found for [^ ]+' "$log" || tail -n 1 "$log")" >&2
      rm -f "$log"
      return 3
    fi
    if grep -qiE 'Failed to establish a new connection|Temporary failure in name resolution|Network is unreachable|Could not fetch URL' "$log"; then
      echo "install-${tool}: PyPI cannot be reached: $(grep -m1 -iE 'connection|resolution|unreachable|fetch' "$log")" >&2
      rm -f "$log"
      return 3
    fi
    cat "$log" >&2
    rm -f "$log"
    echo "install-${tool}: pip install ${package}==${version} failed (output above)" >&2
    return 1
  fi
  local answer
  # `checkov --version` prints "3.3.30", `st --version` "st, version 4.32.5": the version ends the answer.
  if ! answer="$("$binary" --version 2>"$log")" || [[ "$answer" != *"$version" ]]; then
    cat "$log" >&2
    rm -f "$log"
    echo "install-${tool}: the installed ${command} answers --version with '${answer:-nothing}', not ${version}" >&2
    return 1
  fi
  rm -f "$log"
  touch "$done_marker"
  echo "install-${tool}: installed in $((SECONDS - started)) s: $binary" >&2
  echo "$binary"
}
