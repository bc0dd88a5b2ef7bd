#!/usr/bin/env bash
# Builds the provider as it was at a commit (the release whose states the
# state-compatibility test reads) and links it into .cache/bin. The binary
# is cached outside the clone, keyed by the commit and the Go version, as
# tools/build-cached.sh caches the tools.
#
# usage: tools/build-baseline.sh <commit>
set -euo pipefail
cd "$(dirname "$0")/.."
commit=$(git rev-parse --verify "$1^{commit}")
cache="${KUBECREDS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubecreds-tools}"
sum=$( (echo "$commit"; go version) | sha256sum | cut -c1-16)
built="$cache/terraform-provider-kubecreds-baseline-$sum"
link=".cache/bin/terraform-provider-kubecreds-baseline"
mkdir -p .cache/bin "$cache"
if [[ ! -x "$built" ]]; then
  echo "building the provider as of ${commit:0:12} (the state-compatibility baseline)..."
  start=$(date +%s)
  src=$(mktemp -d)
  trap 'rm -rf "$src"' EXIT
  git archive "$commit" | tar -x -C "$src"
  tmp=$(mktemp "$cache/.baseline.XXXXXX")
  (cd "$src" && go build -trimpath -ldflags="-s -w" -o "$tmp" .)
  chmod 0755 "$tmp"
  mv "$tmp" "$built"
  echo "built $built in $(( $(date +%s) - start ))s"
else
  echo "baseline provider is up to date ($built)"
fi
ln -sfn "$built" "$link"
