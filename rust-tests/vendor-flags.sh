# Sourced by run.sh and clippy.sh (from this directory): unpacks the
# vendored crates of vendor.tar.xz on first use and sets `vendor_flags`,
# the cargo flags that build offline from them.
if [ ! -d vendor ]; then
  tar -xJf vendor.tar.xz
fi
# shellcheck disable=SC2034 # used by the scripts that source this one
vendor_flags=(--offline
  --config 'source.crates-io.replace-with="vendored-sources"'
  --config "source.vendored-sources.directory=\"$PWD/vendor\"")
