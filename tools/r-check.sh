#!/usr/bin/env bash
# Builds the package tarball from this checkout and runs R CMD check on it
# with this machine's R (the host's, or a chroot's through tools/rchroot.sh).
#   tools/r-check.sh LABEL [R CMD check options...]
# Prints the check's NOTE/WARNING/ERROR lines and "LABEL check: Status: ..."
# (also into $MORI_SUMMARY_FILE if set);
# exits non-zero on any ERROR, WARNING or NOTE, except the NOTE of "checking
# CRAN incoming feasibility" (it needs CRAN over the network, and says the
# package is a new submission or how its version compares with CRAN's).
set -euo pipefail
# The incoming check's remote part reads CRAN's and Bioconductor's package
# indexes; where they are out of reach (as in this CI) it stops the whole
# check. Set _R_CHECK_CRAN_INCOMING_REMOTE_=true to have it.
export _R_CHECK_CRAN_INCOMING_REMOTE_=${_R_CHECK_CRAN_INCOMING_REMOTE_:-false}
# Likewise the future-timestamps check asks a time server (a NOTE "unable to
# verify current time" without it).
export _R_CHECK_FUTURE_FILE_TIMESTAMPS_=${_R_CHECK_FUTURE_FILE_TIMESTAMPS_:-false}
# And the orphaned-dependencies check of --as-cran reads CRAN's packages.rds
# (the proxy here answers 404 at times, which stops the check).
export _R_CHECK_ORPHANED_=${_R_CHECK_ORPHANED_:-false}
src=$(cd "$(dirname "$0")/.." && pwd)
label=${1:?usage: r-check.sh LABEL [check options]}
shift
work=$(mktemp -d /tmp/mori-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
# A copy, so a build for another R never shares a Rust target directory.
mkdir -p "$work/src"
tar -C "$src" --exclude=./.git --exclude=./src/rust/target --exclude=./rust-tests/target -cf - . | tar -C "$work/src" -xf -
echo "== [$label] R CMD build + check $* ($(R --version | head -n 1))"
( cd "$work" && R CMD build src > build.log 2>&1 ) || { cat "$work/build.log"; exit 1; }
tarball=$(ls "$work"/mori_*.tar.gz)
( cd "$work" && _R_CHECK_FORCE_SUGGESTS_=false R CMD check --no-manual --no-tests "$@" "$tarball" > check.log 2>&1 ) || true
log="$work/check.log"
[[ -z "${MORI_CHECK_LOG:-}" ]] || cp "$log" "$MORI_CHECK_LOG"
# A finding is "* checking X ... NOTE|WARNING|ERROR", or the status alone
# on the next line when the check printed something first.
findings() { grep -E "(\.\.\. .*| )(WARNING|ERROR|NOTE)$" "$log" || true; }
findings
status_line=$(grep -E "^Status:" "$log" || { tail -n 30 "$log" >&2; echo "Status: no status (check did not finish)"; })
echo "$label check: $status_line"
[[ -z "${MORI_SUMMARY_FILE:-}" ]] || echo "$label check: $status_line" >> "$MORI_SUMMARY_FILE"
# Only CRAN incoming feasibility's NOTE is allowed.
allowed=$(grep -cE "^\* checking CRAN incoming feasibility \.\.\. .*NOTE$" "$log" || true)
notes=$(sed -nE 's/^Status:.* ([0-9]+) NOTEs?$/\1/p' "$log")
if ! grep -qE "^Status: (OK|[0-9]+ NOTEs?)$" "$log" || [[ "${notes:-0}" -gt "$allowed" ]]; then
  echo "R CMD check ($label) reported:"
  awk '/(\.\.\. .*| )(WARNING|ERROR|NOTE)$/ {show = 1; print; next} /^\* / {show = 0} show' "$log"
  exit 1
fi
