# Helpers for bench/compare-reference.R (ours vs CRAN mori side by side).
#
# The process running compare-reference.R never loads mori: both
# implementations are called `mori`, so every measurement runs in its own
# process (a callr session that owns the data, a fresh callr worker, or a
# mirai daemon started by such a session) whose library path puts exactly one
# of the two libraries first, and which checks, before it returns, that the
# mori it loaded came from that library.
#
# Functions run in other processes are serialized by callr with the global
# environment as their enclosure, so they may only use base R, the helpers in
# `cmp_helpers` (copied into each child's global environment first) and the
# globals IMPL, LIB, CFG set there.

# Sourced after common.R (env_num(), with_bench_meta(): the run's metadata),
# which loads no mori.

# ---------------------------------------------------------------------------
# Code sent to the children

cmp_helpers <- list(
  # seconds taken by evaluating `expr` in the caller's frame (microsecond clock)
  tsec = function(expr) {
    t0 <- Sys.time()
    force(expr)
    as.numeric(difftime(Sys.time(), t0, units = "secs"))
  },
  # private memory (MB): `Anonymous:` of /proc/self/smaps_rollup
  anon_mb = function() {
    l <- grep("^Anonymous:", readLines("/proc/self/smaps_rollup"), value = TRUE)
    as.numeric(sub("^[^:]+:\\s+([0-9]+) kB.*$", "\\1", l)) / 1024
  },
  gc_anon_mb = function() {
    invisible(gc(full = TRUE))
    anon_mb()
  },
  size_mb = function(x) as.numeric(utils::object.size(x)) / 2^20,
  read_bytes = function(file) readBin(file, "raw", file.size(file)),
  # the implementation this process was started for: "plain" must not have
  # mori loaded; the others must have loaded it (if at all) from LIB
  check_impl = function() {
    loaded <- "mori" %in% loadedNamespaces()
    if (IMPL == "plain") {
      if (loaded) stop("plain process loaded mori")
      return("")
    }
    if (!loaded) return("")
    p <- normalizePath(getNamespaceInfo("mori", "path"))
    if (dirname(p) != normalizePath(LIB)) stop("mori for ", IMPL, " loaded from ", p, ", not ", LIB)
    p
  },
  is_sh = function(x) {
    if (IMPL == "plain") FALSE else isTRUE(getExportedValue("mori", "is_shared")(x))
  },
  share_ = function(x) {
    if (IMPL == "plain") x else getExportedValue("mori", "share")(x)
  }
)

child_setup <- function(h, impl, lib, cfg) {
  list2env(h, envir = .GlobalEnv)
  assign("IMPL", impl, envir = .GlobalEnv)
  assign("LIB", lib, envir = .GlobalEnv)
  assign("CFG", cfg, envir = .GlobalEnv)
  invisible(NULL)
}

# ---------------------------------------------------------------------------
# Processes

libpath_for <- function(impl) {
  lib <- CMP_LIBS[[impl]]
  if (nzchar(lib)) c(lib, .libPaths()) else .libPaths()
}

# A long-lived session that owns the data of one implementation.
start_owner <- function(impl) {
  s <- callr::r_session$new(
    options = callr::r_session_options(libpath = libpath_for(impl)),
    wait = TRUE)
  s$run(child_setup, list(h = cmp_helpers, impl = impl, lib = CMP_LIBS[[impl]], cfg = CMP_CFG))
  s
}

# Run `fun(...)` in the owner session of `impl`, then check which mori it uses.
owner_run <- function(impl, fun, args = list()) {
  CMP_OWNERS[[impl]]$run(function(fun, args) {
    res <- do.call(fun, args)
    check_impl()
    res
  }, list(fun = fun, args = args))
}

# Run `fun(...)` in a fresh R process for `impl` (no mori loaded at start).
worker_run <- function(impl, fun, args = list(), env = character()) {
  callr::r(function(h, impl, lib, cfg, fun, args) {
    list2env(h, envir = .GlobalEnv)
    assign("IMPL", impl, envir = .GlobalEnv)
    assign("LIB", lib, envir = .GlobalEnv)
    assign("CFG", cfg, envir = .GlobalEnv)
    res <- do.call(fun, args)
    attr(res, "mori_path") <- check_impl()
    res
  }, args = list(h = cmp_helpers, impl = impl, lib = CMP_LIBS[[impl]], cfg = CMP_CFG,
                 fun = fun, args = args),
  libpath = libpath_for(impl), env = c(callr::rcmd_safe_env(), env))
}

# Environment for workers whose memory is read: glibc returns freed buffers
# at once (as in bench/common.R's worker_malloc_env()).
malloc_env <- c(MALLOC_MMAP_THRESHOLD_ = "65536", MALLOC_TRIM_THRESHOLD_ = "131072")

# `reps` repetitions of f(impl, rep) for every implementation, interleaved
# (the order of implementations rotates each repetition) so that a slow
# stretch of a shared machine does not land on one side only. Returns a list
# by implementation of lists of results.
interleave <- function(impls, reps, f) {
  out <- setNames(rep(list(list()), length(impls)), impls)
  for (r in seq_len(reps)) {
    ord <- impls[(seq_along(impls) + r - 2L) %% length(impls) + 1L]
    for (impl in ord) out[[impl]][[r]] <- f(impl, r)
  }
  out
}

# ---------------------------------------------------------------------------
# Results

CMP_ROWS <- list()

# One row of the result table. `ours`, `reference`, `plain`: the value of
# each repetition (the median is reported); `floor`: values below it count as
# `floor` in the ratio (memory growth of ~0 MB, say).
add_row <- function(measure, unit, ours, reference, plain = NA_real_, plain_is = "",
                    floor = 0, note = "") {
  med <- function(v) if (all(is.na(v))) NA_real_ else stats::median(v, na.rm = TRUE)
  o <- med(ours); r <- med(reference); p <- med(plain)
  ratio <- if (is.na(o) || is.na(r)) NA_real_ else max(o, floor) / max(r, floor)
  all <- function(v) paste(signif(v, 4), collapse = " ")
  CMP_ROWS[[length(CMP_ROWS) + 1L]] <<- data.frame(
    measure = measure, unit = unit, ours = o, reference = r, ratio = ratio,
    plain = p, plain_is = plain_is, ratio_floor = floor,
    ours_all = all(ours), reference_all = all(reference), plain_all = all(plain),
    note = note, stringsAsFactors = FALSE)
  cat(sprintf("  %-58s ours %-10s ref %-10s ratio %-8s plain %s\n", measure,
              fmt(o), fmt(r), fmt(ratio), fmt(p)))
  invisible(NULL)
}

fmt <- function(v) {
  ifelse(is.na(v), "NA",
         ifelse(abs(v) >= 1e5, formatC(v, format = "d", big.mark = ","),
                formatC(signif(v, 3), format = "fg", digits = 3, flag = "#")))
}

print_results <- function(res) {
  op <- options(width = 250L)
  on.exit(options(op))
  tab <- data.frame(measure = res$measure, unit = res$unit,
                    ours = sub("\\.$", "", fmt(res$ours)),
                    reference = sub("\\.$", "", fmt(res$reference)),
                    ratio = sub("\\.$", "", fmt(res$ratio)),
                    plain = ifelse(is.na(res$plain), "",
                                   paste0(sub("\\.$", "", fmt(res$plain)),
                                          ifelse(nzchar(res$plain_is), paste0(" (", res$plain_is, ")"), ""))))
  print(tab, row.names = FALSE, right = FALSE)
}

plot_ratios <- function(res, file, title) {
  res <- res[!is.na(res$ratio), ]
  l2 <- rev(log2(res$ratio))
  lab <- rev(paste0(res$measure, " [", res$unit, "]"))
  m <- max(1, ceiling(max(abs(l2))))
  lim <- c(-m - 1.5, m + 1.5)       # room for the value labels
  grDevices::png(file, width = 1300, height = 140 + 30 * nrow(res), res = 100, type = "cairo")
  on.exit(grDevices::dev.off())
  graphics::par(mar = c(4.5, 33, 1, 1), oma = c(0, 0, 2.5, 0))
  y <- graphics::barplot(l2, horiz = TRUE, names.arg = lab, las = 1, cex.names = 0.75,
                         xlim = lim, col = ifelse(l2 < 0, "#3a923a", "#c0392b"), border = NA,
                         axes = FALSE, xlab = "ours / reference (log scale): left of 1 = ours faster / smaller")
  at <- seq(-m, m, by = if (m > 6) 2 else 1)
  graphics::axis(1, at = at, labels = ifelse(at < 0, paste0("1/", 2^-at), 2^at), cex.axis = 0.8)
  graphics::abline(v = at, col = "grey88", lty = 3)
  graphics::abline(v = 0, col = "grey30")
  graphics::text(l2, y, labels = formatC(signif(rev(res$ratio), 2), format = "fg", digits = 2),
                 pos = ifelse(l2 < 0, 2, 4), cex = 0.7)
  graphics::mtext(title, side = 3, outer = TRUE, line = 1, adj = 0.02, font = 2, cex = 0.95)
  invisible(file)
}
