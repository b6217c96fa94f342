#!/usr/bin/env bash
# Sourced by scripts/tools/install-{kube-score,polaris,trivy,hydra,...}.sh: builds one Go command from the Go module proxy,
# once per version, into ${XDG_CACHE_HOME:-~/.cache}/platform-tools/<tool>/<version>/bin, and prints its path.
#
#   build_go_tool TOOL MODULE VERSION PACKAGE [go build flags...]
#
# PACKAGE is the main package inside the module ("." or "./cmd/x"). Extra arguments go to `go build` (e.g. -ldflags).
# Environment for the build (CGO_ENABLED, GOEXPERIMENT) is the caller's.
#
# GO_TOOL_DROP_REPLACE (space-separated module paths): replace directives to drop before building, for a module whose
# go.mod replaces a dependency with a directory of its repository that the module's zip does not carry (a nested
# module, which the proxy serves apart or not at all). The published version its go.mod requires is used instead,
# from the proxy, and the build runs in a writable copy of the source (the module cache is read-only).
#
# <TOOL>_GIT (the tool's name in capitals, dashes as underscores: POLARIS_GIT): a git clone or mirror of the module's
# repository, used when the module proxy refuses the module: the source is the pinned commit (a pseudo-version's last
# part, else the version as a tag) taken from it with `git archive`, which git's object ids check. The dependencies
# still come from the proxy, checked against the module's go.sum.
#
# Exit codes: 0 built or already cached (path on stdout); 3 the tool cannot be had here (no Go, or the module proxy
# does not serve the module or one it needs), said on stderr so tests skip with that reason; 1 a failed build.
#
# The module is downloaded, then built inside its own directory: a go.mod with replace directives is applied as the
# tool's own build applies it, which `go install module@version` refuses to do. The build is niced and runs one
# package at a time (the machines have two cores, shared with other builds), into a temporary file beside the cache
# that is moved in whole, so two test runs at once never see half a binary; a lock beside it lets one build while the
# others wait for its result.
set -euo pipefail

# Says on stderr why a go command whose output is in LOG failed, and returns 3 when the Go module proxy refused a
# module it needed (callers exit 3, so tests skip with that reason), 1 for anything else (with the log, less its
# download lines).
#
#   go_failure WHO SUBJECT DOING LOG      # e.g. go_failure install-trivy github.com/aquasecurity/trivy@v0.74.0 building "$log"
go_failure() {
  local who="$1" subject="$2" doing="$3" log="$4" refused
  refused="$(sed -n 's/^go: \([^ ]*@[^ :]*\): reading .*: 4[0-9][0-9] .*/\1/p; s/^.*: \([^ ]*@v[^ :]*\): reading .*: 4[0-9][0-9] .*/\1/p' "$log" | sort -u | paste -sd ' ' -)"
  if [[ -n "$refused" ]]; then
    echo "${who}: the Go module proxy does not serve what ${subject} needs: ${refused}" >&2
    return 3
  fi
  grep -v '^go: downloading ' "$log" >&2 || true
  echo "${who}: ${doing} ${subject} failed (output above)" >&2
  return 1
}

# Extracts REVISION (a commit or tag) from the git clone that the variable named CLONE_VAR names into DEST, after
# checking the clone holds it (git's object ids check the content); says why on stderr and returns 1 if it does not.
#
#   source_from_clone WHO CLONE_VAR REVISION DEST
source_from_clone() {
  local who="$1" clone_var="$2" revision="$3" dest="$4"
  local clone="${!clone_var}"
  if ! git -C "$clone" cat-file -e "${revision}^{commit}" 2>/dev/null; then
    echo "${who}: ${clone_var}=${clone} does not hold ${revision}" >&2
    return 1
  fi
  mkdir -p "$dest"
  git -C "$clone" archive "$revision" | tar -x -C "$dest"
}

build_go_tool() {
  local tool="$1" module="$2" version="$3" package="$4"
  shift 4
  local cache="${XDG_CACHE_HOME:-$HOME/.cache}/platform-tools/${tool}/${version}"
  local binary="$cache/bin/$tool"

  if [[ -x "$binary" ]]; then
    echo "$binary"
    return 0
  fi
  if ! command -v go >/dev/null 2>&1; then
    echo "install-${tool}: no Go toolchain on PATH; ${tool} is built from source with it" >&2
    return 3
  fi

  # One build at a time per tool and version: test files that need the same tool start together on a cold machine.
  mkdir -p "$cache"
  if command -v flock >/dev/null 2>&1; then
    exec {lock}>"$cache/.lock"
    flock "$lock"
    if [[ -x "$binary" ]]; then
      echo "$binary"
      return 0
    fi
  fi

  # A throwaway module directory keeps the download from touching any go.mod of ours.
  local work
  work="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand $work now: it is local to this function
  trap "rm -rf '$work'" EXIT
  (cd "$work" && go mod init "platform-tools/${tool}-download" >/dev/null 2>&1)

  local started=$SECONDS download reason source_dir
  if download="$(cd "$work" && go mod download -json "${module}@${version}" 2>&1)"; then
    source_dir="$(printf '%s\n' "$download" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  else
    reason="$(printf '%s\n' "$download" | sed -n 's/^[[:space:]]*"Error": "\(.*\)"[,]*$/\1/p' | sed 's/\\n/ /g; s/\\t/ /g')"
    local clone_var clone revision
    clone_var="$(printf '%s' "$tool" | tr '[:lower:]-' '[:upper:]_')_GIT"
    clone="${!clone_var:-}"
    if [[ -z "$clone" ]]; then
      echo "install-${tool}: the Go module proxy does not serve ${module}@${version}: ${reason:-$download}. Set ${clone_var} to a clone of its repository to build from it instead." >&2
      return 3
    fi
    # v0.0.0-<time>-<commit>: the commit; any other version: its tag.
    if [[ "$version" =~ -[0-9]{14}-([0-9a-f]{12})$ ]]; then revision="${BASH_REMATCH[1]}"; else revision="$version"; fi
    source_dir="$work/git-source"
    source_from_clone "install-${tool}" "$clone_var" "$revision" "$source_dir" || return 1
    echo "install-${tool}: the module proxy refused ${module}@${version}; building ${revision} from ${clone}" >&2
  fi
  if [[ -z "$source_dir" || ! -d "$source_dir" ]]; then
    echo "install-${tool}: go mod download did not say where ${module}@${version} is:" >&2
    printf '%s\n' "$download" >&2
    return 1
  fi

  local log="$work/build.log"
  if [[ -n "${GO_TOOL_DROP_REPLACE:-}" ]]; then
    cp -r "$source_dir" "$work/src"
    chmod -R u+w "$work/src"
    source_dir="$work/src"
    local dropped
    for dropped in $GO_TOOL_DROP_REPLACE; do
      (cd "$source_dir" && go mod edit -dropreplace "$dropped")
    done
    # Completes go.sum with the dropped replacements' published versions (checked against the checksum database).
    if ! (cd "$source_dir" && GOFLAGS="${GOFLAGS:-} -mod=mod" go list -deps "$package") >/dev/null 2>"$log"; then
      local rc=0
      go_failure "install-${tool}" "${module}@${version}" "resolving ${GO_TOOL_DROP_REPLACE} for" "$log" || rc=$?
      return "$rc"
    fi
  fi

  mkdir -p "$cache/bin"
  local partial refused
  partial="$(mktemp "$cache/bin/.${tool}.XXXXXX")"
  echo "install-${tool}: building ${module}@${version} (once per version; it takes minutes on two cores)" >&2
  if ! (cd "$source_dir" && GOFLAGS="${GOFLAGS:-} -mod=readonly" nice -n 10 go build -p 1 -trimpath "$@" -o "$partial" "$package") >"$log" 2>&1; then
    rm -f "$partial"
    local rc=0
    go_failure "install-${tool}" "${module}@${version}" building "$log" || rc=$?
    return "$rc"
  fi
  chmod 0755 "$partial"
  mv -f "$partial" "$binary"
  echo "install-${tool}: built in $((SECONDS - started)) s: $binary" >&2
  echo "$binary"
}
