#!/usr/bin/env bash
# Builds a tool from its module under tools/ into .cache/bin, and rebuilds it
# only when the module's inputs (go.mod, go.sum, *.go) change: the control
# plane takes minutes to build cold.
#
# usage: tools/build-cached.sh <module dir under tools/> <output name> <package>
set -euo pipefail
cd "$(dirname "$0")/.."
module="tools/$1" name="$2" pkg="$3"
out=".cache/bin/$name"
stamp=".cache/bin/$name.inputs"
mkdir -p .cache/bin
sum=$( (cd "$module" && cat go.mod go.sum ./*.go 2>/dev/null; go version) | sha256sum | cut -d' ' -f1)
if [[ -x "$out" && -f "$stamp" && "$(cat "$stamp")" == "$sum" ]]; then
  echo "$name is up to date ($out)"
  exit 0
fi
echo "building $name from $module (a cold build takes minutes; the control plane about seven)..."
start=$(date +%s)
(cd "$module" && go build -trimpath -ldflags='-s -w' -o "$OLDPWD/$out.tmp" "$pkg")
mv "$out.tmp" "$out"
echo "$sum" > "$stamp"
echo "built $out in $(( $(date +%s) - start ))s"
