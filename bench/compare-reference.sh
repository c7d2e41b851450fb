#!/usr/bin/env bash
# bench/compare-reference.sh -- our mori vs the reference implementation
# (CRAN's mori 0.2.2, C) side by side on R 4.5, in the Debian trixie chroot
# made by tools/r45.sh. Run on the host, as root, from anywhere:
#
#   bench/compare-reference.sh
#   MORI_CMP_SCALE=0.25 bench/compare-reference.sh     # a quick, smaller run
#
# Steps: ensure the chroot (tools/r45.sh setup); install CRAN mori into
# /opt/mori-ref-lib (inside the chroot); install this checkout into
# /opt/mori-ours-lib from a copy in the chroot's /tmp/mori-cmp-src (without
# .git, build products and src/rust/target, which is kept there between runs
# so Rust builds are incremental); then run bench/compare-reference.R inside
# the chroot. It writes bench/results/compare-reference.{csv,png} into this
# checkout (mounted at /work/pkg).
#
# Environment (passed into the chroot by tools/r45.sh, as all MORI_* are):
#   MORI_CMP_SCALE    multiplies every data size (default 1)
#   MORI_CMP_REPS     repetitions of the quick timings (default 5)
#   MORI_CMP_BOOT_REPS  runs of the bootstrap map per implementation (default 3)
#   MORI_CMP_DAEMONS  mirai daemons for the bootstrap (default 4)
#   MORI_CMP_SKIP_INSTALL=1  reuse the libraries installed by an earlier run
#   MORI_CMP_INSTALL_ONLY=1  only install the two libraries
#   MORI_CMP_ONLY=share  only the share() rows (about 1.5 minutes), written to
#                     bench/results/compare-reference-share.{csv,png}
#   MORI_CMP_OURS_LIB, MORI_CMP_REF_LIB, MORI_CMP_SRC  where (inside the chroot)
#                     the libraries and the copy of this checkout go
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
r45="$repo/tools/r45.sh"
REF_LIB=${MORI_CMP_REF_LIB:-/opt/mori-ref-lib}
OURS_LIB=${MORI_CMP_OURS_LIB:-/opt/mori-ours-lib}
SRC=${MORI_CMP_SRC:-/tmp/mori-cmp-src}

export MORI_PKG_DIR="$repo"
# The chroot sees the checkout without its .git: tell the bench which commit it measures.
if [[ -z "${MORI_BENCH_COMMIT:-}" ]]; then
  MORI_BENCH_COMMIT="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo NA)"
  [[ -n "$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ]] && MORI_BENCH_COMMIT+="-dirty"
  export MORI_BENCH_COMMIT
fi
t0=$(date +%s)

if [[ -z "${MORI_CMP_SKIP_INSTALL:-}" ]]; then
  echo "== chroot"
  "$r45" setup

  echo "== reference: CRAN mori into $REF_LIB"
  "$r45" cran-mori "$REF_LIB"

  echo "== ours: this checkout into $OURS_LIB"
  # Inside the chroot: refresh the copy (keeping src/rust/target for
  # incremental builds), drop the Rust static library so that cargo always
  # runs (src/Makevars builds it only when it is missing), install.
  "$r45" run /bin/bash -c '
    set -euo pipefail
    src=$1; lib=$2
    mkdir -p "$src" "$lib"
    if [[ -d "$src/src/rust/target" ]]; then
      mv "$src/src/rust/target" "$src.target"
    fi
    rm -rf "$src"; mkdir -p "$src"
    tar -C /work/pkg --exclude=./.git --exclude=./src/rust/target \
        --exclude=./src/rust/vendor --exclude="./src/*.o" --exclude="./src/*.so" \
        --exclude=./.scratch -cf - . | tar -C "$src" -xf -
    if [[ -d "$src.target" ]]; then
      mv "$src.target" "$src/src/rust/target"
      rm -f "$src/src/rust/target/release/libmori.a"
    fi
    R CMD INSTALL --no-test-load -l "$lib" "$src" > /tmp/mori-cmp-install.log 2>&1 ||
      { tail -n 40 /tmp/mori-cmp-install.log; exit 1; }
    Rscript -e "lib <- commandArgs(TRUE)[1]; library(mori, lib.loc = lib);
                x <- share(rnorm(10)); stopifnot(identical(dirname(find.package(\"mori\")), lib));
                cat(\"ours: mori\", format(packageVersion(\"mori\", lib.loc = lib)), \"OK on\", R.version.string, \"\n\")" "$lib"
  ' bash "$SRC" "$OURS_LIB"
fi

if [[ -n "${MORI_CMP_INSTALL_ONLY:-}" ]]; then
  echo "== installed in $(( $(date +%s) - t0 )) s"
  exit 0
fi

echo "== benchmark (inside the chroot)"
"$r45" run Rscript bench/compare-reference.R

out=compare-reference${MORI_CMP_ONLY:+-$MORI_CMP_ONLY}
echo "== done in $(( $(date +%s) - t0 )) s: bench/results/$out.csv, bench/results/$out.png"
