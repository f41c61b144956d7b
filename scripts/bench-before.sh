#!/bin/sh
# Builds an earlier revision for the benchmarks that compare against "before" (bench/scenarios/tracing.ts):
#   scripts/bench-before.sh <revision> <dir>
#   BENCH_BEFORE_DIR=<dir> npm run bench -- tracing
# The revision's tree is exported (no checkout, no worktree), shares this checkout's node_modules and
# is compiled the way `npm run bench` compiles this one.
set -eu
rev=${1:?usage: scripts/bench-before.sh <revision> <dir>}
dir=${2:?usage: scripts/bench-before.sh <revision> <dir>}
root=$(git rev-parse --show-toplevel)
rm -rf "$dir"
mkdir -p "$dir"
git -C "$root" archive "$rev" | tar -x -C "$dir"
ln -s "$root/node_modules" "$dir/node_modules"
cd "$dir"
"$root/node_modules/.bin/tsc" -p tsconfig.bench.json
node scripts/copy-assets.mjs dist-bench
echo "built $rev in $dir/dist-bench"
