#!/usr/bin/env bash
# Builds lifeboat at a git revision into a directory outside the work tree, optionally with
# patches applied, so a benchmark runs a fixed version while the tree changes, and patched
# variants can be compared with bench/etcd-snapshot.mjs --variant.
#
#   bash bench/build-at.sh DIR [REV] [PATCH...]      # REV defaults to HEAD
#
# DIR gets the revision's files, a node_modules symlink to this checkout's, dist/ from tsc, and
# oclif.manifest.json when the revision has scripts/manifest.js (as `npm run build` does).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:?usage: build-at.sh DIR [REV] [PATCH...]}"
rev="${2:-HEAD}"
shift $(( $# >= 2 ? 2 : 1 ))
rm -rf "$dir"
mkdir -p "$dir"
git -C "$here" archive "$rev" | tar -x -C "$dir"
ln -s "$here/node_modules" "$dir/node_modules"
for p in "$@"; do
  patch -d "$dir" -p1 --quiet --no-backup-if-mismatch < "$(cd "$(dirname "$p")" && pwd)/$(basename "$p")"
done
(cd "$dir" && "$here/node_modules/.bin/tsc" -p tsconfig.build.json)
if [ -f "$dir/scripts/manifest.js" ]; then
  (cd "$dir" && node scripts/manifest.js)
fi
echo "built $(git -C "$here" rev-parse --short "$rev")${*:+ + $*} in $dir"
