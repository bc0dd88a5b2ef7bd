#!/usr/bin/env bash
# Builds a tool from its module under tools/ and links it into .cache/bin. The
# binary itself lives outside the clone, in $KUBECREDS_TOOLS_CACHE (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/kubecreds-tools), under a name keyed by the
# module's inputs (go.mod, go.sum, *.go, Go version): a second clone, or CI on
# the same machine, reuses it instead of rebuilding for minutes (the control
# plane takes about seven cold, OpenTofu and the providers longer).
#
# usage: tools/build-cached.sh <module dir under tools/> <output name> <package> [extra -ldflags]
set -euo pipefail
cd "$(dirname "$0")/.."
module="tools/$1" name="$2" pkg="$3" ldflags="${4:-}"
cache="${KUBECREDS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubecreds-tools}"
# Files in subdirectories (stand-in modules) count too; a module without
# any keeps the key it always had.
sum=$( (cd "$module" && cat go.mod go.sum ./*.go 2>/dev/null; find . -mindepth 2 -type f | LC_ALL=C sort | xargs -r cat; [[ -z "$ldflags" ]] || echo "$ldflags"; go version) | sha256sum | cut -c1-16)
built="$cache/$name-$sum"
link=".cache/bin/$name"
mkdir -p .cache/bin "$cache"
if [[ ! -x "$built" ]]; then
  echo "building $name from $module (a cold build takes minutes; the control plane about seven)..."
  start=$(date +%s)
  tmp=$(mktemp "$cache/.$name.XXXXXX")
  (cd "$module" && go build -trimpath -ldflags="-s -w $ldflags" -o "$tmp" "$pkg")
  chmod 0755 "$tmp"
  mv "$tmp" "$built"
  echo "built $built in $(( $(date +%s) - start ))s"
  # Older builds of the same tool are no longer named by any input.
  find "$cache" -maxdepth 1 -name "$name-*" ! -name "$name-$sum" -mmin +1440 -delete 2>/dev/null || true
else
  echo "$name is up to date ($built)"
fi
ln -sfn "$built" "$link"
