#!/usr/bin/env bash
# bench/cost-curves.sh -- share() and open cost against size and element
# count: ours, CRAN's mori 0.2.2 and plain serialize()/unserialize() on R 4.5,
# in the chroot of tools/r45.sh. Run on the host, as root:
#
#   bench/cost-curves.sh
#   MORI_CURVE_MAX_MB=256 MORI_BENCH_REPS=1 bench/cost-curves.sh   # a quick run
#
# Installs both libraries as bench/compare-reference.sh does (skip with
# MORI_CMP_SKIP_INSTALL=1), then runs bench/cost-curves.R inside the chroot,
# which writes bench/results/cost-curves.{csv,png} into this checkout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
export MORI_PKG_DIR="$repo"
if [[ -z "${MORI_BENCH_COMMIT:-}" ]]; then
  MORI_BENCH_COMMIT="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo NA)"
  [[ -n "$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ]] && MORI_BENCH_COMMIT+="-dirty"
  export MORI_BENCH_COMMIT
fi
# Libraries of their own, so that a compare-reference run of another checkout
# does not replace them meanwhile.
export MORI_CMP_OURS_LIB=${MORI_CMP_OURS_LIB:-/opt/mori-curves-ours-lib}
export MORI_CMP_REF_LIB=${MORI_CMP_REF_LIB:-/opt/mori-ref-lib}
export MORI_CMP_SRC=${MORI_CMP_SRC:-/tmp/mori-curves-src}
if [[ -z "${MORI_CMP_SKIP_INSTALL:-}" ]]; then
  MORI_CMP_INSTALL_ONLY=1 bash "$here/compare-reference.sh"
fi
bash "$repo/tools/r45.sh" run Rscript bench/cost-curves.R
