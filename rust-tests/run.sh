#!/usr/bin/env bash
# Runs mori-core's own unit tests and the property/fuzz tests of rust-tests,
# offline, from the crates in vendor.tar.xz. Exits non-zero if any test fails.
#
# To refresh vendor.tar.xz after a dependency change (needs /work/shared/crates):
#   T=$(mktemp -d) && cargo vendor --offline --respect-source-config \
#     --config 'source.crates-io.replace-with="vendored-sources"' \
#     --config 'source.vendored-sources.directory="/work/shared/crates"' \
#     --sync "$PWD/../src/rust/Cargo.toml" "$T/vendor" && tar -C "$T" -cJf vendor.tar.xz vendor
# (--sync adds src/rust's crates: the core crate is a member of that workspace,
# which cargo resolves whole.)
set -euo pipefail
cd "$(dirname "$0")"

source ./vendor-flags.sh
flags=(--release "${vendor_flags[@]}")

# Property tests: a fixed seed unless one is given (PROPTEST_RNG_SEED=...),
# and no regression files written into tests/.
export PROPTEST_RNG_SEED="${PROPTEST_RNG_SEED:-20261125}"
# Any accessor panic in the fuzz harness fails the run.
export MORI_FUZZ_STRICT="${MORI_FUZZ_STRICT:-1}"
export PROPTEST_DISABLE_FAILURE_PERSISTENCE=1

status=0
echo "== mori-core unit tests (src/rust/core)"
# --locked: never rewrite src/rust/Cargo.lock; own target dir: leave src/rust/target alone.
cargo test "${flags[@]}" --locked --manifest-path ../src/rust/core/Cargo.toml \
  --target-dir "$PWD/target/core" || status=1

echo "== mori-core unit tests, POSIX shm backend (macOS's; --features posix-shm)"
cargo test "${flags[@]}" --locked --features posix-shm --manifest-path ../src/rust/core/Cargo.toml \
  --target-dir "$PWD/target/core-posix" || status=1

echo "== rust-tests (property tests, fuzz harness)"
cargo test "${flags[@]}" --no-fail-fast -- --nocapture || status=1

if [ "$status" -ne 0 ]; then
  echo "rust-tests/run.sh: FAILED" >&2
fi
exit "$status"
