# How cost grows: share() time and a worker's open time against object size
# and element count, ours beside serialize()/unserialize() and the reference
# implementation (CRAN's mori 0.2.2), on one R (R 4.5 in the chroot of
# tools/r45.sh; run it through bench/cost-curves.sh, which installs both).
#
# Cases (each at every size or count):
#   doubles  a double vector of 1 MB, x4 each step, up to MORI_CURVE_MAX_MB
#            (default 8192), as far as memory allows (below)
# (MORI_CURVE_MAX_N caps the counts below, for a quick run)
#   list     a list of n small records (a named double vector of 4), n = 1e2..1e6
#   strings  n distinct strings ("s<i>"), n = 1e3..1e7
# Measures, per implementation:
#   share    seconds of share(x) in the process holding x (plain: serialize(x, NULL),
#            what sending x without mori costs)
#   open     seconds a fresh worker takes to unserialize() the bytes it was
#            sent and read the first element (x[1] or x[[1]]); ours and the
#            reference receive the reference, plain the serialized values
# Medians of MORI_BENCH_REPS runs (default 3; 1 above 1 GB). Each case runs in
# a fresh owner process per implementation (one library first, checked), which
# starts the workers while it keeps the shared object alive; the
# implementations take turns case by case, so one case's data is alive at a
# time.
#
# Memory: before a size, MemAvailable (and /dev/shm's free space, where the
# shared copy lives for the reference, and the plain bytes for the workers)
# must hold 3x the object (at most three copies are alive at once: plain R's
# bytes file, the worker's bytes and what it unserializes; x is dropped once
# shared) plus MORI_CURVE_SPARE_MB (default 6144) for the other users of the
# machine; the first size that does not fit ends the curve, and
# the CSV says where ("stopped" rows).
#
# Output: bench/results/cost-curves.csv and cost-curves.png (log-log).

source(file.path(dirname(sub("^--file=", "", grep("^--file=", c(commandArgs(FALSE), "--file=bench/."), value = TRUE)[1L])), "common.R"))
t_start <- proc.time()[["elapsed"]]

reps <- as.integer(env_num("MORI_BENCH_REPS", 3))
plot_only <- nzchar(Sys.getenv("MORI_CURVE_PLOT_ONLY"))
max_mb <- env_num("MORI_CURVE_MAX_MB", 8192)
spare_mb <- env_num("MORI_CURVE_SPARE_MB", 6144)
max_n <- env_num("MORI_CURVE_MAX_N", 1e7)
timeout_s <- env_num("MORI_CURVE_TIMEOUT", 600)
libs <- c(ours = Sys.getenv("MORI_CMP_OURS_LIB", "/opt/mori-ours-lib"),
          reference = Sys.getenv("MORI_CMP_REF_LIB", "/opt/mori-ref-lib"),
          plain = "")
for (impl in if (plot_only) character() else c("ours", "reference")) {
  if (!file.exists(file.path(libs[[impl]], "mori", "DESCRIPTION")))
    stop("no mori in ", libs[[impl]], " (run bench/cost-curves.sh)")
}
version_of <- function(impl) read.dcf(file.path(libs[[impl]], "mori", "DESCRIPTION"), "Version")[1, 1]
if (!plot_only) cat(sprintf("# cost-curves: ours (mori %s) vs reference (mori %s) vs plain R\n",
            version_of("ours"), version_of("reference")))
meta <- bench_meta()
if (!plot_only) cat(sprintf("# commit %s, %s, %d cores, %s; %d reps\n", meta$commit, R.version.string,
            meta$cores, format(Sys.time()), reps))

mem_available_mb <- function() {
  l <- grep("^MemAvailable:", readLines("/proc/meminfo"), value = TRUE)
  as.numeric(gsub("[^0-9]", "", l)) / 1024
}
shm_free_mb <- function() {
  out <- tryCatch(system2("df", c("-Pk", "/dev/shm"), stdout = TRUE), error = function(e) character())
  if (length(out) < 2L) return(Inf)
  as.numeric(strsplit(out[2L], "[[:space:]]+")[[1]][4L]) / 1024
}
fits <- function(mb) {
  need <- 3 * mb + spare_mb
  mem_available_mb() >= need && shm_free_mb() >= 2 * mb + 256
}

# ---------------------------------------------------------------------------
# One case in one owner process: make x, time share() (or serialize()) `reps`
# times, then time `reps` fresh workers opening what it sends.

owner_case <- function(impl, kind, n, reps, wdir) {
  if (impl != "plain") suppressPackageStartupMessages(library(mori))
  make <- switch(kind,
    doubles = function() stats::rnorm(n),
    list = function() lapply(seq_len(n), function(i) c(a = i, b = i + 0.5, c = -i, d = 0)),
    strings = function() paste0("s", seq_len(n)))
  x <- make()
  bytes_of_x <- as.numeric(utils::object.size(x))
  send <- function() if (impl == "plain") serialize(x, NULL) else mori::share(x)
  share_s <- numeric(reps)
  for (r in seq_len(reps)) {
    invisible(gc())
    t0 <- Sys.time()
    s <- send()
    share_s[r] <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
    if (r < reps) { rm(s); invisible(gc()) }
  }
  if (impl != "plain" && !isTRUE(mori::is_shared(s))) stop(impl, ": share() did not share")
  payload <- if (impl == "plain") s else serialize(s, NULL)
  file <- file.path(wdir, sprintf("%s-%s-%g.bin", impl, kind, n))
  writeBin(payload, file)
  payload_bytes <- length(payload)
  rm(payload, x)   # ours and the reference keep `s`, the shared object
  if (impl == "plain") rm(s)
  invisible(gc())
  open_s <- vapply(seq_len(reps), function(r) {
    callr::r(function(file, kind, impl) {
      bytes <- readBin(file, "raw", file.size(file))
      if (impl != "plain") suppressPackageStartupMessages(library(mori))
      invisible(gc())
      t0 <- Sys.time()
      y <- unserialize(bytes)
      v <- if (kind == "list") y[[1L]] else y[1L]
      as.numeric(difftime(Sys.time(), t0, units = "secs"))
    }, args = list(file = file, kind = kind, impl = impl), libpath = .libPaths())
  }, numeric(1))
  unlink(file)
  where <- if (impl == "plain") "" else dirname(getNamespaceInfo("mori", "path"))
  list(bytes = bytes_of_x, payload_bytes = payload_bytes, share_s = share_s, open_s = open_s,
       lib = where)
}

run_case <- function(impl, kind, n, reps, wdir) {
  libpath <- if (nzchar(libs[[impl]])) c(libs[[impl]], .libPaths()) else .libPaths()
  res <- tryCatch(
    callr::r(owner_case, args = list(impl = impl, kind = kind, n = n, reps = reps, wdir = wdir),
             libpath = libpath, timeout = timeout_s),
    error = function(e) list(error = conditionMessage(e)))
  if (!is.null(res$lib) && nzchar(libs[[impl]]) &&
      normalizePath(res$lib) != normalizePath(libs[[impl]]))
    stop(impl, " loaded mori from ", res$lib, ", not ", libs[[impl]])
  res
}

# ---------------------------------------------------------------------------
# The curves

wdir <- tempfile("mori-curves-", tmpdir = if (dir.exists("/dev/shm")) "/dev/shm" else tempdir())
dir.create(wdir)
impls <- c("ours", "reference", "plain")
mb_steps <- 4^(0:10)
mb_steps <- unique(c(mb_steps[mb_steps <= max_mb], max_mb))   # ends at MORI_CURVE_MAX_MB
cases <- rbind(
  data.frame(kind = "doubles", n = mb_steps * 2^20 / 8, mb = mb_steps),
  data.frame(kind = "list", n = 10^(2:6), mb = NA_real_),
  data.frame(kind = "strings", n = 10^(3:7), mb = NA_real_))
cases <- cases[cases$kind == "doubles" | cases$n <= max_n, ]

rows <- list()
stopped <- character()
for (i in seq_len(if (plot_only) 0L else nrow(cases))) {
  kind <- cases$kind[i]; n <- cases$n[i]; mb <- cases$mb[i]
  if (kind %in% stopped) next
  if (!is.na(mb) && !fits(mb)) {
    cat(sprintf("# %s: stopping before %g MB (MemAvailable %.0f MB, /dev/shm free %.0f MB)\n",
                kind, mb, mem_available_mb(), shm_free_mb()))
    stopped <- c(stopped, kind)
    rows[[length(rows) + 1L]] <- data.frame(kind = kind, n = n, impl = NA, bytes = mb * 2^20,
      payload_bytes = NA, share_s = NA, open_s = NA, share_all = "", open_all = "",
      note = sprintf("stopped: needs %.0f MB, MemAvailable %.0f MB", 3 * mb + spare_mb, mem_available_mb()))
    next
  }
  r_case <- if (!is.na(mb) && mb > 1024) 1L else reps
  for (impl in impls) {
    res <- run_case(impl, kind, n, r_case, wdir)
    all <- function(v) paste(signif(v, 4), collapse = " ")
    row <- if (!is.null(res$error)) {
      data.frame(kind = kind, n = n, impl = impl, bytes = NA, payload_bytes = NA, share_s = NA,
                 open_s = NA, share_all = "", open_all = "", note = res$error)
    } else {
      data.frame(kind = kind, n = n, impl = impl, bytes = res$bytes, payload_bytes = res$payload_bytes,
                 share_s = stats::median(res$share_s), open_s = stats::median(res$open_s),
                 share_all = all(res$share_s), open_all = all(res$open_s), note = "")
    }
    rows[[length(rows) + 1L]] <- row
    cat(sprintf("  %-8s n = %-9g %-9s %9.1f MB  share %-9s open %-9s %s\n", kind, n, impl,
                row$bytes / 2^20, format(signif(row$share_s, 3)), format(signif(row$open_s, 3)),
                row$note))
  }
}
unlink(wdir, recursive = TRUE)
out_dir <- bench_results_dir()
if (plot_only) {
  # MORI_CURVE_PLOT_ONLY=1: draw the plot again from the CSV of the last run
  res <- utils::read.csv(file.path(out_dir, "cost-curves.csv"), stringsAsFactors = FALSE)
  meta <- list(commit = res$commit[1], cores = res$cores[1])
  reps <- max(lengths(strsplit(res$share_all[nzchar(res$share_all) & !is.na(res$share_all)], " ")))
} else {
  res <- do.call(rbind, rows)
  res$ours_version <- version_of("ours")
  res$reference_version <- version_of("reference")
  write_results(res, "cost-curves")
}

# ---------------------------------------------------------------------------
# The plot: one row per case, share() on the left, open on the right.

png_path <- file.path(out_dir, "cost-curves.png")
grDevices::png(png_path, width = 1100, height = 1250, res = 110, type = "cairo")
graphics::par(mfrow = c(3, 2), mar = c(4.2, 4.5, 2.2, 1), oma = c(0, 0, 2.5, 0))
cols <- c(ours = "#1f6fb4", reference = "#d9822b", plain = "#555555")
labels <- c(ours = sprintf("ours (mori %s)", res$ours_version[1]),
            reference = sprintf("reference (CRAN mori %s)", res$reference_version[1]),
            plain = "plain R: serialize() / unserialize()")
ok <- res[!is.na(res$impl) & !is.na(res$share_s), ]
for (kind in c("doubles", "list", "strings")) {
  d <- ok[ok$kind == kind, ]
  xv <- if (kind == "doubles") d$bytes / 2^20 else d$n
  xlab <- switch(kind, doubles = "double vector size (MB)", list = "list elements (records of 4 doubles)",
                 strings = "distinct strings")
  for (what in c("share_s", "open_s")) {
    y <- d[[what]]
    y[y <= 0] <- 1e-5
    if (!length(y)) { graphics::plot.new(); next }
    graphics::plot(xv, y, log = "xy", type = "n", xlab = xlab, ylab = "seconds",
                   ylim = range(y, na.rm = TRUE), axes = FALSE,
                   main = sprintf("%s: %s", kind, if (what == "share_s") "share() (plain: serialize())"
                                  else "worker open: unserialize() + first element"))
    graphics::axis(1, at = 10^(0:7), labels = c("1", "10", "100", "1,000", "1e4", "1e5", "1e6", "1e7"))
    graphics::axis(2, at = 10^(-5:3), labels = c("10 us", "0.1 ms", "1 ms", "10 ms", "0.1 s", "1 s", "10 s", "100 s", "1000 s"), las = 1, cex.axis = 0.8)
    graphics::box()
    graphics::abline(h = 10^(-5:3), col = "grey90", lty = 3)
    for (impl in impls) {
      k <- d$impl == impl
      graphics::lines(xv[k], y[k], col = cols[[impl]], lwd = 2)
      graphics::points(xv[k], y[k], col = cols[[impl]], pch = 19, cex = 0.7)
    }
    if (kind == "doubles" && what == "share_s")
      graphics::legend("topleft", legend = labels, col = cols, lwd = 2, bty = "n", cex = 0.85)
    stop_row <- res[res$kind == kind & startsWith(as.character(res$note), "stopped") %in% TRUE, ]
    if (nrow(stop_row))
      graphics::mtext(sprintf("stopped before %s MB: %s", format(stop_row$bytes[1] / 2^20, big.mark = ","),
                              sub("^stopped: ", "", stop_row$note[1])), side = 1, line = -1.3, cex = 0.6, adj = 0.98)
  }
}
graphics::mtext(sprintf("Cost curves, median of %d runs (1 above 1 GB): R %s, %d cores, commit %s",
                        reps, res$r_version[1], as.integer(meta$cores), meta$commit),
                side = 3, outer = TRUE, line = 1, font = 2)
invisible(grDevices::dev.off())
cat("wrote ", png_path, sprintf(" (%.0f s in all)\n", proc.time()[["elapsed"]] - t_start), sep = "")
