#!/usr/bin/env bash
# Runs every test: the Rust core's unit and property tests, R CMD check, and
# the testthat suite on this machine's R; with CI=true or MORI_R45=1 also the
# testthat suite on R 4.5 (a Debian trixie root made by tools/r45.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:$HOME/.cargo/bin"
# Run the whole suite, including tests testthat skips on CRAN (child
# processes, cgroups, other users, large vectors).
export NOT_CRAN=true
bash tools/install-deps.sh
status=0
# Each testthat run appends its "label: N passed, N failed, N skipped" here;
# the totals are the last line printed.
MORI_SUMMARY_FILE=$(mktemp /tmp/mori-summary.XXXXXX)
export MORI_SUMMARY_FILE

echo "== Rust: cargo test (core unit tests, property tests, fuzzing)"
bash rust-tests/run.sh || status=1

echo "== R CMD build + check"
check=$(mktemp -d /tmp/mori-check.XXXXXX)
R CMD build . > "$check/build.log" 2>&1 || { cat "$check/build.log"; exit 1; }
mv mori_*.tar.gz "$check/"
( cd "$check" && _R_CHECK_FORCE_SUGGESTS_=false R CMD check --no-manual --no-tests mori_*.tar.gz > check.log 2>&1 ) || true
grep -E "^Status:|^\* checking .*\.\.\. (WARNING|ERROR|NOTE)" "$check/check.log" || true
if ! grep -qE "^Status: (OK|[0-9]+ NOTEs?)$" "$check/check.log"; then
  echo "R CMD check reported errors or warnings:"; sed -n '/WARNING\|ERROR/,+8p' "$check/check.log"; status=1
fi

bash tools/run-r-tests.sh "R-$(Rscript -e 'cat(format(getRversion()))')" || status=1

if [ "${CI:-}" = "true" ] || [ "${MORI_R45:-}" = "1" ]; then
  # The chroot sees the checkout, not /tmp: the R 4.5 run writes its
  # summary into the checkout and it is moved over afterwards.
  MORI_SUMMARY_FILE=/work/pkg/.r45-summary bash tools/r45.sh run bash tools/run-r-tests.sh R-4.5 || status=1
  if [ -f .r45-summary ]; then cat .r45-summary >> "$MORI_SUMMARY_FILE"; rm -f .r45-summary; fi
fi

echo "== summary"
cat "$MORI_SUMMARY_FILE"
awk -F'[:,]' '{ p += $2 + 0; f += $3 + 0; s += $4 + 0 } END { printf "all: %d passed, %d failed, %d skipped\n", p, f, s }' "$MORI_SUMMARY_FILE"
rm -f "$MORI_SUMMARY_FILE"
exit $status
