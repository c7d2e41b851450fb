#!/usr/bin/env bash
# Installs the package from this checkout into a private library and runs the
# testthat suite against it. Used by tools/test.sh, on the host's R and inside
# the R 4.5 root (tools/r45.sh). Prints "<label>: N passed, N failed".
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
label=${1:-R}
work=$(mktemp -d /tmp/mori-tests.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/lib"
# A copy, so a build for another R never shares a Rust target directory.
tar -C "$src" --exclude=./.git --exclude=./src/rust/target --exclude=./rust-tests/target -cf - . | tar -C "$work/src" -xf -
echo "== [$label] R CMD INSTALL ($(R --version | head -n 1))"
R CMD INSTALL --no-test-load -l "$work/lib" "$work/src" > "$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }
grep -E "^using rustc|building mori for" "$work/install.log" || true
cd "$work/src/tests/testthat"
R_LIBS="$work/lib${R_LIBS:+:$R_LIBS}" Rscript --vanilla "$src/tools/testthat-summary.R" "$label" "$work/lib"
