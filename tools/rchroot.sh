#!/usr/bin/env bash
# tools/rchroot.sh -- another R in a Debian chroot, so the package's tests,
# R CMD check and benchmarks also run on modern R:
#   4.5  R 4.5 from Debian trixie at /opt/mori-r45
#   4.6  R 4.6 from Debian forky  at /opt/mori-r46
#
#   tools/rchroot.sh VERSION setup            create/update the chroot (idempotent)
#   tools/rchroot.sh VERSION run CMD...       run CMD inside the chroot in /work/pkg
#   tools/rchroot.sh VERSION cran-mori DIR    install CRAN's mori into library DIR (a
#                                             path inside the chroot, e.g. /opt/mori-ref-lib)
#   tools/rchroot.sh VERSION clean [--purge]  unmount leftovers; --purge deletes the root
# tools/r45.sh and tools/r46.sh are the same with VERSION given.
#
# Environment (NN is 45 or 46):
#   MORI_RNN_ROOT  chroot directory (default /opt/mori-rNN)
#   MORI_PKG_DIR   package checkout mounted at /work/pkg (default: repo root)
#   MORI_RNN_ENV   extra variable names passed into the chroot (space separated)
#
# Mounts (/proc, /sys, /dev, /dev/pts, /dev/shm, /root/.cargo, /root/.rustup,
# the checkout at /work/pkg) are made in a private mount namespace (unshare)
# when possible, so the host never sees them, and are also lazily unmounted
# in reverse order by an EXIT trap (also on failure or Ctrl-C).
# The package list lives in tools/rNN-packages.txt; the ready marker
# ROOT/.mori-rNN-ready holds its hash, so a changed list is installed on the
# next setup/run and an unchanged one is a fast no-op.
set -euo pipefail

R_SERIES=${1:-}
shift || true
case "$R_SERIES" in
  4.5) SUITE=trixie ;;
  # forky is Debian testing: no forky script in bookworm's debootstrap (sid's
  # fits), no -updates/-security packages (both suites are empty), and its
  # Release file may be past Valid-Until on a mirror that lags (as here).
  4.6) SUITE=forky ;;
  *) echo "usage: rchroot.sh 4.5|4.6 setup|run|cran-mori|clean ..." >&2; exit 2 ;;
esac
TAG=${R_SERIES/./}            # 45, 46
SETUP_VERSION=1
CRAN_REPO="https://cloud.r-project.org"
SELF="$(readlink -f "${BASH_SOURCE[0]}")"
TOOLS_DIR="$(dirname "$SELF")"
PKG_LIST="$TOOLS_DIR/r$TAG-packages.txt"
ROOT_VAR=MORI_R${TAG}_ROOT
ROOT="${!ROOT_VAR:-/opt/mori-r$TAG}"
PKG_DIR="${MORI_PKG_DIR:-$(dirname "$TOOLS_DIR")}"
CHROOT_PKG=/work/pkg
MARKER_NAME=.mori-r$TAG-ready
DEBOOTSTRAP_STAMP=.mori-r$TAG-debootstrap-done
CHROOT_PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '[r%s] %s\n' "$TAG" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $EUID -eq 0 ]] || die "must run as root (chroot, mount)"
case "$ROOT" in /*) ;; *) die "$ROOT_VAR must be absolute: $ROOT" ;; esac
ROOT="$(readlink -m "$ROOT")"
[[ "$ROOT" != / && "$ROOT" != /opt && "$ROOT" != /root ]] || die "refusing ROOT=$ROOT"
[[ -d "$PKG_DIR" ]] || die "package dir not found: $PKG_DIR"
PKG_DIR="$(readlink -f "$PKG_DIR")"
case "$ROOT/" in "$PKG_DIR"/*) die "ROOT must be outside the checkout" ;; esac

# ---------------------------------------------------------------- timing ---
# Steps (also those run in the mounted child process) append to one file.
if [[ -z "${RCHROOT_TIMING_FILE:-}" ]]; then
  RCHROOT_TIMING_FILE=$(mktemp /tmp/rchroot-timings.XXXXXX)
  export RCHROOT_TIMING_FILE
  RCHROOT_TIMING_OWNER=1
fi
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
record() { printf '  %-30s %7ss\n' "$1" "$2" >> "$RCHROOT_TIMING_FILE"; }
# step NAME CMD... : run CMD (in a subshell, with set -e in force), time it
step() {
  local name=$1; shift
  local t0 rc d
  t0=$(now)
  log "== $name"
  set +e
  ( set -e; "$@" )
  rc=$?
  set -e
  d=$(elapsed "$t0")
  record "$name$([[ $rc -eq 0 ]] || echo " (FAILED rc=$rc)")" "$d"
  log "== $name: ${d}s$([[ $rc -eq 0 ]] || echo " (FAILED rc=$rc)")"
  return "$rc"
}
print_timings() {
  [[ -s "$RCHROOT_TIMING_FILE" ]] || return 0
  log "timings:"
  cat "$RCHROOT_TIMING_FILE" >&2
  : > "$RCHROOT_TIMING_FILE"
}
cleanup_timing_file() { [[ -z "${RCHROOT_TIMING_OWNER:-}" ]] || rm -f "$RCHROOT_TIMING_FILE"; }

# ---------------------------------------------------------------- mounts ---
# Host-namespace mounts under ROOT (deepest first).
mounts_under_root() {
  findmnt -rn -o TARGET 2>/dev/null | awk -v r="$ROOT" '$0 == r || index($0, r "/") == 1' | sort -r || true
}
unmount_leftovers() {
  local m
  for m in $(mounts_under_root); do
    log "unmounting leftover $m"
    umount -l "$m" || true
  done
}
assert_nothing_mounted() {
  local left; left=$(mounts_under_root)
  [[ -z "$left" ]] || die "still mounted under $ROOT: $left"
}

MOUNTED=()
do_mount() { # do_mount TARGET(relative to ROOT) MOUNT-ARGS...
  local tgt="$ROOT/$1"; shift
  mkdir -p "$tgt"
  mount "$@" "$tgt"
  MOUNTED+=("$tgt")
}
umount_all() {
  local i
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
    umount -l "${MOUNTED[$i]}" 2>/dev/null || log "warning: could not unmount ${MOUNTED[$i]}"
  done
  MOUNTED=()
}
mount_all() {
  trap 'umount_all; cleanup_timing_file' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  do_mount proc -t proc proc
  do_mount sys --bind /sys
  do_mount dev --bind /dev
  do_mount dev/pts --bind /dev/pts
  do_mount dev/shm --bind /dev/shm   # its own mount on the host: bind it explicitly
  local d
  for d in /root/.cargo /root/.rustup; do
    if [[ -d $d ]]; then do_mount "${d#/}" --bind "$d"; else log "warning: $d missing on host"; fi
  done
  do_mount "${CHROOT_PKG#/}" --bind "$PKG_DIR"
  # R CMD INSTALL -l needs an existing dir: keep the conventional one around
  mkdir -p "$ROOT/tmp/r${TAG}lib"
  if [[ -e /etc/resolv.conf ]]; then
    cp -L --remove-destination /etc/resolv.conf "$ROOT/etc/resolv.conf"
  fi
  sync_host_cas
}

# The chroot trusts the host's local CA certificates too (a TLS-inspecting
# proxy's CA, as on this workplace, else CRAN over https fails): host files in
# /usr/local/share/ca-certificates and stand-alone PEM files (not symlinks) in
# /etc/ssl/certs are copied to the chroot's /usr/local/share/ca-certificates.
sync_host_cas() {
  [[ -x "$ROOT/usr/sbin/update-ca-certificates" ]] || return 0
  local dst="$ROOT/usr/local/share/ca-certificates" f base changed=0
  mkdir -p "$dst"
  local srcs=()
  for f in /usr/local/share/ca-certificates/*.crt /etc/ssl/certs/*.pem; do
    [[ -f "$f" && ! -L "$f" ]] || continue
    [[ "$f" == */ssl-cert-snakeoil.pem ]] && continue
    grep -q 'BEGIN CERTIFICATE' "$f" || continue
    base="host-$(basename "${f%.*}").crt"
    srcs+=("$base")
    cmp -s "$f" "$dst/$base" || { cp "$f" "$dst/$base"; changed=1; }
  done
  for f in "$dst"/host-*.crt; do   # drop CAs the host no longer has
    [[ -e "$f" ]] || continue
    [[ " ${srcs[*]:-} " == *" $(basename "$f") "* ]] || { rm -f "$f"; changed=1; }
  done
  if [[ $changed -eq 1 ]]; then
    log "host CA certificates synced into the chroot"
    chroot "$ROOT" /usr/sbin/update-ca-certificates >/dev/null
  fi
}

# Run the script's internal subcommand "__mounted ARGS..." with the mounts in
# place, in a private mount namespace if unshare works (nothing leaks to the
# host even on SIGKILL), else in the host namespace (the trap unmounts).
with_mounts() {
  local no_unshare=MORI_R${TAG}_NO_UNSHARE
  if [[ -z "${!no_unshare:-}" ]] && unshare --mount --propagation private true 2>/dev/null; then
    unshare --mount --propagation private -- bash "$SELF" "$R_SERIES" __mounted "$@"
  else
    bash "$SELF" "$R_SERIES" __mounted "$@"
  fi
}

# chroot_env CMD... : run CMD in the chroot with a clean environment
chroot_env() {
  local envs=(HOME=/root "PATH=$CHROOT_PATH" LANG=C.UTF-8 LC_ALL=C.UTF-8 USER=root LOGNAME=root
              SHELL=/bin/bash DEBIAN_FRONTEND=noninteractive)
  local v
  # pass through a few harmless variables and anything named by MORI_RNN_ENV
  local extra=MORI_R${TAG}_ENV
  for v in TERM CI NOT_CRAN RUST_BACKTRACE ${!extra:-} \
           $(compgen -v | grep -E '^(MORI_|TESTTHAT_|_R_CHECK_|CARGO_)' | grep -Ev '^(MORI_R[0-9]+_|MORI_PKG_DIR$)' || true); do
    [[ -n "${!v+x}" ]] && envs+=("$v=${!v}")
  done
  chroot "$ROOT" /usr/bin/env -i "${envs[@]}" "$@"
}

# ---------------------------------------------------------------- packages --
list_hash() {
  { echo "setup-version $SETUP_VERSION"; grep -v '^[[:space:]]*#' "$PKG_LIST" | sed 's/[[:space:]]\+/ /g;s/ $//' | grep .; } |
    sha256sum | cut -d' ' -f1
}
is_ready() {
  [[ -f "$ROOT/$MARKER_NAME" ]] && [[ "$(head -n1 "$ROOT/$MARKER_NAME")" == "$(list_hash)" ]]
}

write_apt_sources() {
  echo "deb http://deb.debian.org/debian $SUITE main"
  if [[ "$SUITE" != forky ]]; then   # forky's -updates and -security are empty
    echo "deb http://deb.debian.org/debian $SUITE-updates main"
    echo "deb http://deb.debian.org/debian-security $SUITE-security main"
  fi
}
write_apt_conf() {
  printf 'APT::Install-Recommends "0";\nAcquire::Retries "3";\n'
  # testing's Release files are valid for a week; this mirror's forky one is
  # older than that (the signature is still checked)
  [[ "$SUITE" != forky ]] || printf 'Acquire::Check-Valid-Until "false";\n'
}

# Inside the mounts: configure apt, install Debian packages, CRAN fallbacks.
install_packages() {
  # apt configuration (idempotent)
  write_apt_sources > "$ROOT/etc/apt/sources.list"
  printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
  chmod 755 "$ROOT/usr/sbin/policy-rc.d"
  echo 'force-unsafe-io' > "$ROOT/etc/dpkg/dpkg.cfg.d/mori-unsafe-io"
  write_apt_conf > "$ROOT/etc/apt/apt.conf.d/90mori"

  step "apt-get update" chroot_env apt-get update -q

  local deb=() cran=() missing=() policy name cname
  while read -r name cname _; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    policy=$(chroot_env apt-cache policy "$name" </dev/null 2>/dev/null || true)
    if grep -q 'Candidate: [^(]' <<<"$policy"; then
      deb+=("$name")
    elif [[ "$name" == r-cran-* ]]; then
      cran+=("${cname:-${name#r-cran-}}")
    else
      missing+=("$name")
    fi
  done < "$PKG_LIST"
  [[ ${#missing[@]} -eq 0 ]] || die "not in $SUITE: ${missing[*]}"
  log "from Debian: ${deb[*]}"
  log "from CRAN:   ${cran[*]:-(none)}"

  step "apt-get install" chroot_env apt-get install -y -q -o Dpkg::Use-Pty=0 "${deb[@]}"
  chroot_env apt-get clean
  sync_host_cas

  if [[ ${#cran[@]} -gt 0 ]]; then
    step "CRAN install" chroot_env Rscript -e '
      pkgs <- commandArgs(TRUE)
      todo <- pkgs[!vapply(pkgs, function(p) nzchar(system.file(package = p)), TRUE)]
      if (length(todo)) {
        message("installing from CRAN: ", paste(todo, collapse = " "))
        install.packages(todo, repos = "'"$CRAN_REPO"'", Ncpus = 2L)
      }
      bad <- todo[!vapply(todo, function(p) nzchar(system.file(package = p)), TRUE)]
      if (length(bad)) stop("CRAN install failed: ", paste(bad, collapse = " "))
    ' "${cran[@]}"
  fi

  # every R package on the list must load
  local rpkgs=() 
  while read -r name cname _; do
    [[ "$name" == r-cran-* ]] && rpkgs+=("${cname:-${name#r-cran-}}")
  done < "$PKG_LIST"
  # Debian lowercases names: map r-cran-foo to the installed package's real name
  step "verify R packages load" chroot_env Rscript -e '
    want <- commandArgs(TRUE)
    inst <- rownames(installed.packages())
    for (p in want) {
      real <- inst[tolower(inst) == tolower(p)][1]
      if (is.na(real)) stop("R package not installed: ", p)
      suppressPackageStartupMessages(library(real, character.only = TRUE))
    }
    cat(R.version.string, "--", length(want), "packages load\n")
  ' "${rpkgs[@]}"

  { list_hash; echo "# written by tools/rchroot.sh on $(date -u +%FT%TZ)";
    echo "# debian: ${deb[*]}"; echo "# cran: ${cran[*]:-}"; } > "$ROOT/$MARKER_NAME"
}

# ---------------------------------------------------------------- setup ---
ensure_host_tools() {
  if ! command -v debootstrap >/dev/null 2>&1; then
    step "host: install debootstrap" bash -c 'apt-get update -q && apt-get install -y -q debootstrap'
  fi
}

run_debootstrap() {
  if [[ -e "$ROOT" && ! -e "$ROOT/$DEBOOTSTRAP_STAMP" ]]; then
    log "removing incomplete root $ROOT"
    unmount_leftovers
    assert_nothing_mounted
    rm -rf --one-file-system "$ROOT"
  fi
  mkdir -p "$(dirname "$ROOT")"
  # in a private mount namespace: debootstrap's own /proc,/sys mounts vanish with it
  # bookworm's debootstrap knows no forky: sid's script fits any testing suite
  # (debootstrap checks the Release signature, not its Valid-Until)
  local script=()
  [[ -e "/usr/share/debootstrap/scripts/$SUITE" ]] || script=(/usr/share/debootstrap/scripts/sid)
  local args=(--variant=minbase "$SUITE" "$ROOT" http://deb.debian.org/debian "${script[@]}")
  # in a private mount namespace: debootstrap's own /proc,/sys mounts vanish with it
  if unshare --mount --propagation private true 2>/dev/null; then
    unshare --mount --propagation private -- debootstrap "${args[@]}"
  else
    debootstrap "${args[@]}"
  fi
  touch "$ROOT/$DEBOOTSTRAP_STAMP"
}

do_setup() {
  local t0; t0=$(now)
  mkdir -p "$(dirname "$ROOT")"
  exec 9>"$ROOT.lock"
  flock 9
  if is_ready; then
    log "ready: $ROOT ($(chroot "$ROOT" /usr/bin/R --version 2>/dev/null | sed -n 1p || echo '?'))"
    exec 9>&-
    record "setup (already ready, no-op)" "$(elapsed "$t0")"
    return 0
  fi
  unmount_leftovers
  ensure_host_tools
  if [[ ! -e "$ROOT/$DEBOOTSTRAP_STAMP" ]]; then
    step "debootstrap $SUITE" run_debootstrap
  fi
  local rc=0
  with_mounts install || rc=$?
  exec 9>&-
  [[ $rc -eq 0 ]] || die "package installation failed (rc=$rc)"
  assert_nothing_mounted
  record "setup total" "$(elapsed "$t0")"
  log "chroot size: $(du -sh --one-file-system "$ROOT" | cut -f1)  ($ROOT)"
}

ensure_ready() {
  if ! is_ready; then
    do_setup
    print_timings
  fi
}

# ---------------------------------------------------------------- commands --
cmd_run() {
  [[ $# -gt 0 ]] || die "usage: rchroot.sh $R_SERIES run CMD..."
  ensure_ready
  local rc=0
  with_mounts exec-in "$@" || rc=$?
  exit "$rc"
}

cmd_cran_mori() {
  [[ $# -eq 1 ]] || die "usage: rchroot.sh $R_SERIES cran-mori DIR   (DIR is a path inside the chroot)"
  local lib=$1
  case "$lib" in /*) ;; *) die "DIR must be absolute (inside the chroot): $lib" ;; esac
  ensure_ready
  local rc=0
  step "cran-mori install" with_mounts exec-in Rscript -e '
    lib <- commandArgs(TRUE)[1]
    dir.create(lib, recursive = TRUE, showWarnings = FALSE)
    ok <- nzchar(system.file(package = "mori", lib.loc = lib)) &&
          requireNamespace("mori", lib.loc = lib, quietly = TRUE)
    if (ok) {
      message("mori ", packageVersion("mori", lib.loc = lib), " already in ", lib)
    } else {
      install.packages("mori", lib = lib, repos = "'"$CRAN_REPO"'", Ncpus = 2L)
      if (!nzchar(system.file(package = "mori", lib.loc = lib))) stop("installing mori failed")
    }
  ' "$lib" || rc=$?
  [[ $rc -eq 0 ]] || die "cran-mori install failed"
  step "cran-mori verify" with_mounts exec-in Rscript -e '
    lib <- commandArgs(TRUE)[1]
    library(mori, lib.loc = lib); x <- share(rnorm(10)); print(shared_name(x))
    cat("mori", format(packageVersion("mori", lib.loc = lib)), "OK on", R.version.string, "\n")
  ' "$lib" || rc=$?
  print_timings
  exit "$rc"
}

cmd_clean() {
  local purge=0
  [[ "${1:-}" == --purge ]] && purge=1
  unmount_leftovers
  assert_nothing_mounted
  if [[ $purge -eq 1 && -e "$ROOT" ]]; then
    exec 9>"$ROOT.lock"
    flock 9
    log "deleting $ROOT"
    rm -rf --one-file-system "$ROOT"
    rm -f "$ROOT.lock"
  fi
  log "clean done"
}

usage() { sed -n '2,/^set -euo/p' "$SELF" | sed '$d;s/^# \{0,1\}//'; }

main() {
  local cmd=${1:-help}; shift || true
  case "$cmd" in
    setup)      do_setup; print_timings ;;
    run)        cmd_run "$@" ;;
    cran-mori)  cmd_cran_mori "$@" ;;
    clean)      cmd_clean "$@" ;;
    __mounted)  # internal: "$@" = install | exec-in CMD...
      mount_all
      local sub=$1; shift
      case "$sub" in
        install) install_packages ;;
        exec-in)
          local rc=0
          chroot_env /bin/sh -c 'cd "$0" && exec "$@"' "$CHROOT_PKG" "$@" || rc=$?
          exit "$rc" ;;
        *) die "bad internal command $sub" ;;
      esac ;;
    help|-h|--help) usage ;;
    *) usage; exit 2 ;;
  esac
}

trap cleanup_timing_file EXIT
main "$@"
