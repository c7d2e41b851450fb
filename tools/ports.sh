#!/usr/bin/env bash
# Port checks: everything this Linux machine can verify of mori on macOS and
# Windows, without a Mac, a Windows machine or R for either.
#
#   macos-aarch64, macos-x86_64  cargo check of both crates (the R crate and
#                                the core, with the core's tests) for
#                                {aarch64,x86_64}-apple-darwin, for the newest
#                                R here (a tools/rchroot.sh root) and this
#                                machine's R: type-checks only (no Apple
#                                linker or SDK here)
#   windows-core-tests           the core crate's cargo test for
#                                x86_64-pc-windows-gnu, run under wine
#   windows-link                 the package library built by src/Makevars.win
#                                (its cargo command, offline, vendored) and
#                                linked as mori.dll with mingw-w64 against an
#                                import library of the R.dll symbols it uses;
#                                every library rustc asks for must be in
#                                Makevars.win's PKG_LIBS; the DLL is loaded
#                                under wine next to a stub R.dll
#   linux-posix-shm              the whole testthat suite on this machine's R
#                                with the core's POSIX shm backend forced
# Name checks as arguments to run only those.
#
# The toolchain is Debian's rustc-web / cargo-web (stable, with the standard
# library's source, built per target with -Zbuild-std), mingw-w64 and wine;
# this script installs them itself (apt-get) and keeps everything it builds
# under MORI_PORTS_CACHE (default ~/.cache/mori-ports), never in the checkout.
# The last line is "ports: N passed, N failed"; the exit status is 1 if any
# check failed. Logs: $MORI_PORTS_CACHE/logs/<check>.log.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${MORI_PORTS_CACHE:-$HOME/.cache/mori-ports}
LOGS=$CACHE/logs
mkdir -p "$CACHE" "$LOGS"
passed=0
failed=0
RESULTS=()
t_all=$SECONDS

# Checks named as arguments run alone (bash tools/ports.sh windows-link).
ONLY=("$@")

# check NAME CMD...: runs CMD with its output in the check's log, and counts it.
check() {
  local name=$1 t0=$SECONDS rc=0
  shift
  if [ ${#ONLY[@]} -gt 0 ] && [[ " ${ONLY[*]} " != *" $name "* ]]; then return 0; fi
  echo "== ports: $name"
  "$@" > "$LOGS/$name.log" 2>&1 || rc=$?
  local took=$((SECONDS - t0))
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    RESULTS+=("$(printf '  %-22s passed %5ss' "$name" "$took")")
  else
    failed=$((failed + 1))
    RESULTS+=("$(printf '  %-22s FAILED %5ss  (%s)' "$name" "$took" "$LOGS/$name.log")")
    echo "-- $name failed; the end of its log:"
    tail -n 25 "$LOGS/$name.log" | sed 's/^/   | /'
  fi
}

# fail_all REASON NAME...: counts checks that cannot run at all.
fail_all() {
  local reason=$1 name
  shift
  for name in "$@"; do
    failed=$((failed + 1))
    RESULTS+=("$(printf '  %-22s FAILED        (%s)' "$name" "$reason")")
  done
}

# ---------------------------------------------------------------- toolchain
DEBS=(rustc-web cargo-web rust-web-src libstd-rust-web-dev)
# The Windows cross tools.
APT_PKGS=(xz-utils gcc-mingw-w64-x86-64-posix binutils-mingw-w64-x86-64 wine wine64)

# install_apt_packages PKG...: installs those not installed yet.
install_apt_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
}

# The rust-web packages are unpacked, not installed: an installed
# /usr/bin/cargo would shadow rustup's for the rest of the machine.
unpack_rust_web() {
  local version
  version=$(apt-cache policy rustc-web | awk '/Candidate:/ { print $2 }')
  if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    apt-get update -qq
    version=$(apt-cache policy rustc-web | awk '/Candidate:/ { print $2 }')
  fi
  [ -n "$version" ] && [ "$version" != "(none)" ] || { echo "no rustc-web package"; return 1; }
  TOOLCHAIN=$CACHE/rust-web-${version//[^A-Za-z0-9.+-]/_}
  # What the unpacked toolchain runs on: its shared libraries (LLVM, libgit2
  # for cargo...), installed as packages; no compiler comes with them.
  local libstd=libstd-rust-web-${version%%.0+*} runtime
  runtime=$(apt-cache depends "rustc-web=$version" "cargo-web=$version" "$libstd=$version" |
    awk '/^ *Depends: lib/ && $2 !~ /^lib(std-rust|c6|gcc-s1|stdc)/ && $2 !~ /^<|-dev$/ { print $2 }' | sort -u)
  echo "runtime libraries: $runtime"
  install_apt_packages $runtime || return 1
  if [ ! -x "$TOOLCHAIN/usr/bin/cargo" ]; then
    local debs=$CACHE/debs p
    rm -rf "$TOOLCHAIN" "$debs" && mkdir -p "$debs"
    (cd "$debs" && apt-get download "${DEBS[@]/%/=$version}" "$libstd=$version") || return 1
    for p in "$debs"/*.deb; do dpkg -x "$p" "$TOOLCHAIN.partial" || return 1; done
    mv "$TOOLCHAIN.partial" "$TOOLCHAIN" && rm -rf "$debs"
  fi
  export PATH="$TOOLCHAIN/usr/bin:$PATH"
  export LD_LIBRARY_PATH="$TOOLCHAIN/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # -Zbuild-std on a stable toolchain.
  export RUSTC_BOOTSTRAP=1
  cargo --version && rustc --version
}

# One offline source for cargo: the package's vendored crates and the
# standard library's (vendored with its source), side by side.
make_vendor_dir() {
  local sum src
  sum=$(sha256sum src/rust/vendor.tar.xz | cut -c1-16)
  VENDOR=$CACHE/vendor-$sum
  if [ ! -d "$VENDOR" ]; then
    # (cargo skips the hidden .pkg: no Cargo.toml at its top)
    rm -rf "$VENDOR.partial" && mkdir -p "$VENDOR.partial/.pkg"
    tar -xJf src/rust/vendor.tar.xz -C "$VENDOR.partial/.pkg" || return 1
    for src in "$VENDOR.partial"/.pkg/vendor/*; do
      ln -s ".pkg/vendor/$(basename "$src")" "$VENDOR.partial/pkg-$(basename "$src")"
    done
    mv "$VENDOR.partial" "$VENDOR"
  fi
  # the standard library's crates (refreshed: the toolchain may be newer)
  find "$VENDOR" -maxdepth 1 -name 'std-*' -type l -delete
  for src in "$TOOLCHAIN"/usr/lib/rustlib/src/rust/library/vendor/*; do
    ln -s "$src" "$VENDOR/std-$(basename "$src")"
  done
}

# Rust >= 1.78's std imports ProcessPrng from bcryptprimitives.dll, which
# wine 8 lacks: a small DLL forwards it to advapi32's RtlGenRandom.
make_wine_prefix() {
  export WINEPREFIX=$CACHE/wine WINEDEBUG=-all WINEDLLOVERRIDES="bcryptprimitives=n;mscoree,mshtml="
  local sys32=$WINEPREFIX/drive_c/windows/system32
  if [ ! -f "$sys32/bcryptprimitives.dll" ]; then
    wineboot --init > /dev/null 2>&1 || return 1
    wineserver -w 2>/dev/null || true
    local dir
    dir=$(mktemp -d)
    cat > "$dir/prng.c" <<'EOF'
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
  while (length > 0) {
    ULONG n = length > 0x7fffffff ? 0x7fffffff : (ULONG) length;
    if (!SystemFunction036(data, n)) return FALSE;
    data += n;
    length -= n;
  }
  return TRUE;
}
EOF
    x86_64-w64-mingw32-gcc-posix -shared -O2 -o "$dir/bcryptprimitives.dll" "$dir/prng.c" -ladvapi32 || return 1
    cp "$dir/bcryptprimitives.dll" "$sys32/" && rm -rf "$dir"
  fi
}

setup() {
  install_apt_packages "${APT_PKGS[@]}" && unpack_rust_web && make_vendor_dir && make_wine_prefix
}

# ---------------------------------------------------------------- cargo
# cargo_for TARGET-DIR-NAME CARGO-ARGS...: the checkout's crates, offline,
# --locked (the lock file is never rewritten), std built from source.
cargo_for() {
  local dir=$1
  shift
  cargo "$@" --locked --offline \
    --config 'source.crates-io.replace-with="vendored-sources"' \
    --config "source.vendored-sources.directory=\"$VENDOR\"" \
    --target-dir "$CACHE/target/$dir"
}

# macOS: both crates, and the core's tests, type-check for the target,
# for the R whose headers are in R_INCLUDE (the R crate's code differs by
# R version: ALTLIST from 4.3, R_mapAttrib from 4.6).
check_macos() {
  local target=$1 r_include=$2
  echo "R headers: $r_include ($(grep -h 'define R_M' "$r_include/Rversion.h" | tr -s ' \n' ' '))"
  R_INCLUDE_DIR=$r_include cargo_for "check-$target" check -Zbuild-std=std,panic_abort,panic_unwind,test \
    --target "$target" --manifest-path src/rust/Cargo.toml --workspace --all-targets
}

# This machine's R's headers, and those of the newest R in a root made by
# tools/rchroot.sh (CI makes them before this runs), else this machine's.
HOST_R_INCLUDE=$(Rscript -e 'cat(R.home("include"))')
NEWEST_R_INCLUDE=$HOST_R_INCLUDE
for root in /opt/mori-r46 /opt/mori-r45; do
  if [ -f "$root/usr/share/R/include/Rversion.h" ]; then
    NEWEST_R_INCLUDE=$root/usr/share/R/include
    break
  fi
done

MINGW_CC=x86_64-w64-mingw32-gcc-posix
# Runtime DLLs of the posix mingw toolchain (libwinpthread, libgcc_s), for wine.
mingw_dll_path() {
  local gcc_dir
  gcc_dir=$(dirname "$($MINGW_CC -print-libgcc-file-name)")
  echo "Z:$gcc_dir;Z:/usr/x86_64-w64-mingw32/lib"
}

check_windows_core_tests() {
  WINEPATH=$(mingw_dll_path) \
  CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=$MINGW_CC \
  CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine \
    cargo_for test-windows test -Zbuild-std=std,panic_abort,panic_unwind,test \
    --target x86_64-pc-windows-gnu --manifest-path src/rust/core/Cargo.toml
  local rc=$?
  wineserver -k 2>/dev/null || true
  return $rc
}

# Windows: src/ is copied out (with the vendored crates and std's side by
# side in rust/vendor, and rust/target in the cache), Makevars.win's own
# cargo rule builds the static library, and mingw links the DLL as R's
# Windows build would: init.c and unwind.c, PKG_LIBS, -lR.
check_windows_link() {
  local work=$CACHE/windows-pkg
  rm -rf "$work" && mkdir -p "$work" "$CACHE/target/windows-pkg"
  tar -C src --exclude=./rust/target --exclude=./rust/vendor --exclude='*.o' --exclude='*.so' \
    --exclude='*.dll' -cf - . | tar -C "$work" -xf - || return 1
  cp -a "$VENDOR/.pkg/vendor" "$work/rust/vendor" || return 1
  local v
  for v in "$VENDOR"/std-*; do ln -s "$(readlink "$v")" "$work/rust/vendor/${v##*/}"; done
  ln -s "$CACHE/target/windows-pkg" "$work/rust/target"
  # print-VAR: a variable of Makevars.win as R's make would see it (WIN=64).
  cat > "$work/print.mk" <<'EOF'
print-%: ; @echo $($*)
EOF
  local mk=(make --no-print-directory -C "$work" -f Makevars.win -f print.mk WIN=64 TAR=tar)
  local statlib pkg_libs
  statlib=$("${mk[@]}" print-STATLIB) && pkg_libs=$("${mk[@]}" print-PKG_LIBS) || return 1
  echo "STATLIB = $statlib"
  echo "PKG_LIBS = $pkg_libs"
  CARGO_UNSTABLE_BUILD_STD=std,panic_abort,panic_unwind \
  RUSTFLAGS="--print=native-static-libs" \
    "${mk[@]}" "$statlib" CARGO_LINKER=$MINGW_CC 2>&1 | tee "$work/cargo.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || return 1

  # every native library rustc asks for is in PKG_LIBS (but R, linked by R)
  local wanted lib missing=()
  wanted=$(sed -n 's/.*native-static-libs: //p' "$work/cargo.log" | tail -n 1)
  echo "rustc's native-static-libs: $wanted"
  for lib in $wanted; do
    case " $pkg_libs " in *" $lib "*) ;; *) [ "$lib" = "-lR" ] || missing+=("$lib") ;; esac
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Makevars.win's PKG_LIBS lacks: ${missing[*]}"
    return 1
  fi

  local rinc
  rinc=$(Rscript -e 'cat(R.home("include"))')
  (cd "$work" && $MINGW_CC -O2 -Wall -I"$rinc" -DNDEBUG -c init.c -o init.o &&
    $MINGW_CC -O2 -Wall -I"$rinc" -DNDEBUG -c unwind.c -o unwind.o) || return 1
  make_r_import_library "$work" "$statlib" || return 1
  (cd "$work" && $MINGW_CC -shared -static-libgcc -o mori.dll init.o unwind.o \
    $pkg_libs -L"$work/rimport" -lR) || return 1
  x86_64-w64-mingw32-objdump -p "$work/mori.dll" > "$work/mori.dll.txt"
  grep -q ' R_init_mori$' "$work/mori.dll.txt" || { echo "mori.dll does not export R_init_mori"; return 1; }
  echo "mori.dll: $(stat -c %s "$work/mori.dll") bytes; imports from:"
  sed -n 's/^\s*DLL Name: /  /p' "$work/mori.dll.txt"
  load_under_wine "$work"
}

# An import library for R.dll: every symbol the package's objects take
# from R (an undefined symbol that the Linux libR.so defines), DATA for
# R's variables. A symbol R.dll lacks then fails the link.
make_r_import_library() {
  local work=$1 statlib=$2 dir=$1/rimport libr
  mkdir -p "$dir"
  local -x LC_ALL=C
  libr=$(Rscript -e 'cat(file.path(R.home("lib"), "libR.so"))')
  nm -D --defined-only "$libr" | awk '{ print $3, $2 }' | sort -u > "$dir/libR.syms"
  x86_64-w64-mingw32-nm -u "$statlib" "$work/init.o" "$work/unwind.o" 2>/dev/null |
    awk '$1 == "U" { sub(/^__imp_/, "", $2); print $2 }' | sort -u > "$dir/wanted.syms"
  {
    echo "LIBRARY R.dll"
    echo "EXPORTS"
    join "$dir/wanted.syms" "$dir/libR.syms" |
      awk '{ print " " $1 (($2 ~ /^[BDGRSV]$/) ? " DATA" : "") }'
  } > "$dir/R.def"
  echo "R.def: $(($(wc -l < "$dir/R.def") - 2)) symbols of R"
  x86_64-w64-mingw32-dlltool -d "$dir/R.def" -l "$dir/libR.dll.a" -D R.dll
}

# Loads mori.dll under wine next to a stub R.dll that exports the same
# symbols (functions that return 0, zeroed variables): the DLL's imports,
# R's variables included, resolve, and R_init_mori is found. Nothing of R
# runs.
load_under_wine() {
  local work=$1 dir=$1/wine-load
  mkdir -p "$dir"
  {
    awk 'NR > 2 { if ($2 == "DATA") print "__declspec(dllexport) char " $1 "[64];"
                  else print "__declspec(dllexport) long long " $1 "(void) { return 0; }" }' "$work/rimport/R.def"
  } > "$dir/Rstub.c"
  cat > "$dir/load.c" <<'EOF'
#include <windows.h>
#include <stdio.h>
int main(void) {
  HMODULE lib = LoadLibraryA("mori.dll");
  if (!lib) { printf("LoadLibrary(mori.dll) failed: error %lu\n", GetLastError()); return 1; }
  if (!GetProcAddress(lib, "R_init_mori")) { printf("no R_init_mori\n"); return 1; }
  printf("mori.dll loaded under wine; R_init_mori found\n");
  return 0;
}
EOF
  (cd "$dir" && $MINGW_CC -shared -w -o R.dll Rstub.c && $MINGW_CC -o load.exe load.c && cp ../mori.dll .) || return 1
  (cd "$dir" && WINEPATH=$(mingw_dll_path) wine load.exe)
  local rc=$?
  wineserver -k 2>/dev/null || true
  return $rc
}

# ---------------------------------------------------------------- POSIX shm
# The core's POSIX shm backend (macOS's) forced on Linux: the whole suite.
check_linux_posix_shm() {
  if ! grep -q 'posix-shm' src/rust/core/Cargo.toml 2>/dev/null; then
    echo "the core crate has no POSIX shm build switch yet (a 'posix-shm' feature): nothing to run"
    return 1
  fi
  MORI_OS_BACKEND=posix-shm NOT_CRAN=true bash tools/run-r-tests.sh "R-posix-shm"
}

# ---------------------------------------------------------------- run
# (All in one function, read whole before it runs: editing this file while
# it runs cannot change what runs.)
main() {
  # One run at a time per cache (the target directories are shared).
  exec 9> "$CACHE/lock"
  flock 9
  CROSS=(macos-aarch64 macos-x86_64 windows-core-tests windows-link)
  echo "== ports: toolchain (log: $LOGS/toolchain.log)"
  t0=$SECONDS
  if setup > "$LOGS/toolchain.log" 2>&1; then
    echo "toolchain ready in $((SECONDS - t0))s: $(rustc --version)"
    check macos-aarch64 check_macos aarch64-apple-darwin "$NEWEST_R_INCLUDE"
    check macos-x86_64 check_macos x86_64-apple-darwin "$HOST_R_INCLUDE"
    check windows-core-tests check_windows_core_tests
    check windows-link check_windows_link
  else
    tail -n 25 "$LOGS/toolchain.log" | sed 's/^/   | /'
    fail_all "toolchain setup failed after $((SECONDS - t0))s" "${CROSS[@]}"
  fi
  check linux-posix-shm check_linux_posix_shm

  echo "== ports: results"
  printf '%s\n' "${RESULTS[@]}"
  printf '  %-22s        %5ss\n' "total" $((SECONDS - t_all))
  echo "ports: $passed passed, $failed failed"
  [ $failed -eq 0 ]
}

{ main "$@"; exit $?; }
