#!/usr/bin/env bash
# Builds Kong's decK (github.com/kong/deck) from the Go module proxy, once per version, into a cache outside the
# repository, and prints the binary's path. k8s/test/edge.test.ts runs it to validate the generated Kong
# configuration with `deck file validate`.
#
#   scripts/tools/install-deck.sh            # prints e.g. ~/.cache/platform-tools/deck/v1.55.0/bin/deck
#   DECK_VERSION=v1.65.1 scripts/tools/install-deck.sh
#
# Exit codes: 0 built or already cached (path on stdout); 3 decK cannot be had here (no Go, or the module proxy
# does not serve decK or a module it needs), said on stderr, so callers skip; 1 anything else (a failed build).
#
# How it builds (inside the downloaded module, so decK's replace directives apply; niced, one package at a time):
# scripts/tools/go-tool.sh, as for the other Go tools.
set -euo pipefail
# v1.55.0: newer releases need modules the proxy refuses (Kong/ai-deck-converter, pb33f/doctor, go-kong v0.75.1).
DECK_VERSION="${DECK_VERSION:-v1.55.0}"
# shellcheck source=SCRIPTDIR/go-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-tool.sh"
build_go_tool deck github.com/kong/deck "$DECK_VERSION" .
