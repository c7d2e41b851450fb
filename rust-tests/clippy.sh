#!/usr/bin/env bash
# cargo clippy with every warning an error, offline from the crates in
# vendor.tar.xz: the R crate and mori-core (src/rust's workspace, all
# targets, so unit tests too) and these property/fuzz tests. The crates
# declare rust-version, so clippy also refuses std APIs newer than it
# (incompatible_msrv). Exits non-zero on any warning.
set -euo pipefail
cd "$(dirname "$0")"

source ./vendor-flags.sh
flags=("${vendor_flags[@]}" --locked)

status=0
echo "== cargo clippy: src/rust (the R crate and mori-core)"
# Own target dir: leave src/rust/target (R CMD INSTALL's) alone.
cargo clippy "${flags[@]}" --manifest-path ../src/rust/Cargo.toml --workspace --all-targets \
  --target-dir "$PWD/target/clippy" -- -D warnings || status=1
echo "== cargo clippy: rust-tests"
cargo clippy "${flags[@]}" --all-targets --target-dir "$PWD/target/clippy-tests" -- -D warnings || status=1

if [ "$status" -ne 0 ]; then
  echo "rust-tests/clippy.sh: FAILED" >&2
fi
exit "$status"
