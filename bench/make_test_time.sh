#!/usr/bin/env bash
# How long `make test` takes on a clean clone: first run (new venv, no pip cache, empty Maven
# repository and jar cache) and cached run (everything in place). Prints both in seconds.
# Usage: bench/make_test_time.sh [REPO]   (default: this checkout's HEAD)
set -euo pipefail
repo=${1:-$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/clone"
cd "$work/clone"
export PIP_NO_CACHE_DIR=1 KENTONGAN_HOME="$work/home" MAVEN_OPTS="-Dmaven.repo.local=$work/m2"
seconds() { local t0 t1; t0=$(date +%s.%N); make test >"$work/$1.log" 2>&1 || { tail -20 "$work/$1.log"; exit 1; }; t1=$(date +%s.%N); python3 -c "print($t1 - $t0)"; }
first=$(seconds first)
cached=$(seconds cached)
summary() { grep -E '^=+ .*(passed|failed).* =+$' "$work/$1.log" | tail -1; }
printf 'make test, clean clone, first run:  %6.1f s   %s\n' "$first" "$(summary first)"
printf 'make test, clean clone, cached run: %6.1f s   %s\n' "$cached" "$(summary cached)"
