#!/usr/bin/env bash
# Builds the Consul server used by consulkit's tests, once, into a cache
# directory keyed by version, and prints the binary's path. Later runs reuse
# the cached binary. CONSULKIT_CACHE overrides the cache root.
set -euo pipefail

version=1.14.8
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The same root as the harness's (Go's os.UserCacheDir, or the temp dir
# in a bare environment without HOME).
if [ -n "${CONSULKIT_CACHE:-}" ]; then
  cache="$CONSULKIT_CACHE"
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
  cache="$XDG_CACHE_HOME/consulkit"
elif [ -n "${HOME:-}" ]; then
  cache="$HOME/.cache/consulkit"
else
  cache="${TMPDIR:-/tmp}/consulkit-cache"
fi
# Absolute: the build runs in tools/consul, and the path printed is used
# from wherever the caller runs.
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
out="$cache/consul-$version/consul"

# is_wanted BIN reports whether BIN is Consul $version. The output is read
# whole before it is matched: "consul version | grep -q" fails under
# pipefail whenever grep exits before consul has written its last line
# (SIGPIPE), which made a good build look wrong now and then.
is_wanted() {
  local v
  [ -x "$1" ] || return 1
  v="$("$1" version 2>/dev/null)" || return 1
  [ "${v%%$'\n'*}" = "Consul v$version" ]
}

if is_wanted "$out"; then
  echo "$out"
  exit 0
fi

mkdir -p "$(dirname "$out")"
# Test binaries of several packages may ask for the binary at once: one
# builds, the others wait for it and reuse it.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$(dirname "$out")/.build.lock"
  flock 9
  if is_wanted "$out"; then
    echo "$out"
    exit 0
  fi
  # A build killed before it could clean up (SIGKILL) left its temporary
  # file: with the lock held, nobody else is building, so any is stale.
  rm -f "$out".tmp.*
fi
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
(
  cd "$root/tools/consul"
  CGO_ENABLED=0 go build -trimpath -o "$tmp" .
) >&2
is_wanted "$tmp" || { echo "built binary is not Consul v$version" >&2; exit 1; }
mv "$tmp" "$out"
echo "$out"
