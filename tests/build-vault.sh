#!/usr/bin/env bash
# Builds (once) and caches a HashiCorp Vault server binary for the Transit
# master-key tests in crypto/. Needs only the Go module proxy: the server
# source comes in as a Go module and is built inside its extracted tree,
# because its go.mod replaces its own api/ and sdk/ subdirectories (so
# `go install pkg@version` refuses it).
#
# Prints the binary's path as the last line of stdout. Fast when cached.
# Use it as:  export KEYWARDEN_VAULT_BIN=$(tests/build-vault.sh | tail -1)
set -euo pipefail

# v1.21.0, not a later 1.21.x: the build needs published api/ and sdk/ module
# versions that match the server's own tree (see below), and 1.21.0's go.mod
# names them (sdk v0.20.0); 1.21.4's in-tree sdk is ahead of every sdk tag.
version="${VAULT_VERSION:-v1.21.0}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/keywarden"
bin="$cache/vault-$version"
link="$cache/vault" # the default path crypto/transit_test.go looks at

log() { echo "build-vault: $*" >&2; }

if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
  ln -sfn "$(basename "$bin")" "$link"
  echo "$bin"
  exit 0
fi

mkdir -p "$cache"
# Module downloads go to the usual module cache; GOWORK/GOFLAGS from the
# caller must not leak into a foreign module's build.
export GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
start=$(date +%s)

log "downloading github.com/hashicorp/vault@$version from the module proxy"
tmpmod=$(mktemp -d)
trap 'rm -rf "$tmpmod"' EXIT
dir=$(cd "$tmpmod" && go mod download -json "github.com/hashicorp/vault@$version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
[ -d "$dir" ] || { log "module download failed"; exit 1; }

# The module cache is read-only; build in a writable copy.
src="$cache/src-vault-$version"
if [ ! -f "$src/go.mod" ]; then
  rm -rf "$src.tmp"
  cp -r "$dir" "$src.tmp"
  chmod -R u+w "$src.tmp"
  # The module zip leaves out api/ and sdk/ (nested modules), so go.mod's
  # "replace ... => ./api" targets are missing: use the published versions
  # go.mod requires instead.
  (cd "$src.tmp" &&
    sed -n 's|^replace \([^ ]*\) => \(\./[^ ]*\)$|\1 \2|p' go.mod |
    while read -r mod dir; do
      [ -e "$dir" ] || go mod edit -dropreplace="$mod"
    done)
  mv "$src.tmp" "$src"
fi

# "minimal" leaves out the add-on plugins (cloud auth methods, database
# engines, ...); transit is a core secrets engine and stays in.
log "building (tags: vault minimal); the first build takes several minutes"
(cd "$src" && go build -trimpath -tags "vault minimal" -ldflags "-s -w" -o "$bin.tmp" .)
mv "$bin.tmp" "$bin"
rm -rf "$src" # only the binary is needed from here on
ln -sfn "$(basename "$bin")" "$link"
log "built in $(($(date +%s) - start))s, $(du -h "$bin" | cut -f1): $("$bin" version)"
echo "$bin"
