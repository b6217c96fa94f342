#!/usr/bin/env bash
# Builds Kong's decK (github.com/kong/deck) from the Go module proxy, once per version, into a cache outside the
# repository, and prints the binary's path. k8s/test/edge.test.ts runs it to validate the generated Kong
# configuration with `deck file validate`.
#
#   scripts/tools/install-deck.sh            # prints e.g. ~/.cache/platform-tools/deck/v1.65.1/bin/deck
#   DECK_VERSION=v1.64.0 scripts/tools/install-deck.sh
#
# Exit codes: 0 built or already cached (path on stdout); 3 decK cannot be had here (no Go, or the module proxy
# does not serve decK or a module it needs), said on stderr, so callers skip; 1 anything else (a failed build).
#
# Why not `go install github.com/kong/deck@VERSION`: decK's go.mod has replace directives, which `go install
# module@version` refuses. Building inside the downloaded module applies them exactly as decK's own build does.
# The build is niced and runs one package at a time: the machines have two cores, shared with other builds.
set -euo pipefail

DECK_VERSION="${DECK_VERSION:-v1.65.1}"
MODULE="github.com/kong/deck"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/platform-tools/deck/${DECK_VERSION}"
binary="$cache/bin/deck"

if [[ -x "$binary" ]]; then
  echo "$binary"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-deck: no Go toolchain on PATH; decK is built from source with it" >&2
  exit 3
fi

# A throwaway module directory keeps the download from touching any go.mod of ours.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
go mod init platform-tools/deck-download >/dev/null 2>&1

started=$SECONDS
if ! download="$(go mod download -json "${MODULE}@${DECK_VERSION}" 2>&1)"; then
  reason="$(printf '%s\n' "$download" | sed -n 's/^[[:space:]]*"Error": "\(.*\)"[,]*$/\1/p' | sed 's/\\n/ /g; s/\\t/ /g')"
  echo "install-deck: the Go module proxy does not serve ${MODULE}@${DECK_VERSION}: ${reason:-$download}" >&2
  exit 3
fi
source_dir="$(printf '%s\n' "$download" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ -z "$source_dir" || ! -d "$source_dir" ]]; then
  echo "install-deck: go mod download did not say where ${MODULE}@${DECK_VERSION} is:" >&2
  printf '%s\n' "$download" >&2
  exit 1
fi

# Build into a temporary file beside the cache and move it in whole: two test runs at once never see half a binary.
# The build downloads what it needs; a module the proxy refuses means decK cannot be had (exit 3), which is not
# the same as a build that fails (exit 1).
mkdir -p "$cache/bin"
partial="$(mktemp "$cache/bin/.deck.XXXXXX")"
log="$work/build.log"
echo "install-deck: building ${MODULE}@${DECK_VERSION} (once per version; several minutes on two cores)" >&2
if ! (cd "$source_dir" && GOFLAGS="${GOFLAGS:-} -mod=readonly" nice -n 10 go build -p 1 -trimpath -o "$partial" .) >"$log" 2>&1; then
  rm -f "$partial"
  refused="$(sed -n 's/^go: \([^ ]*@[^ :]*\): reading .*: 4[0-9][0-9] .*/\1/p' "$log" | sort -u | paste -sd ' ' -)"
  if [[ -n "$refused" ]]; then
    echo "install-deck: the Go module proxy does not serve what ${MODULE}@${DECK_VERSION} needs: ${refused}" >&2
    exit 3
  fi
  grep -v '^go: downloading ' "$log" >&2 || true
  echo "install-deck: building ${MODULE}@${DECK_VERSION} failed (output above)" >&2
  exit 1
fi
chmod 0755 "$partial"
mv -f "$partial" "$binary"
echo "install-deck: built in $((SECONDS - started)) s: $binary" >&2
echo "$binary"
