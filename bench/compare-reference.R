# Our mori vs the reference implementation (CRAN's mori 0.2.2, written in C)
# side by side, on one R (meant for R 4.5 in the chroot of tools/r45.sh; run
# it through bench/compare-reference.sh, which installs both libraries).
#
# Both packages are called `mori`: this process never loads mori. Each
# implementation has an owner session (callr) that makes the data and shares
# it, and fresh worker processes (callr, mirai daemons) that receive it; each
# loads mori from its own library only and checks so. A third owner, "plain",
# does the same with plain R objects (no mori) where a baseline means
# something. Timings of the implementations are interleaved repetitions.
#
# Measures (sizes at MORI_CMP_SCALE = 1):
#   share() of a 200 MB double vector and of a 200 MB data frame (5 columns)
#   bytes per task: serialize() of share(df) and of one of its columns
#   open latency: a fresh worker unserializes the reference of the 200 MB
#     vector and reads x[1] (with mori not yet loaded, and already loaded)
#   seed bootstrap: 4 mirai daemons, one task each of
#     colMeans(data[sample(nrow(data), replace = TRUE), ]) on 5 x 2e6 doubles
#   worker private memory (Anonymous) after receiving the 200 MB vector, and
#     its growth from var(), sort(), crossprod() minus the results' size
#   strings: share() of 1e6 distinct strings; x == "a" 3 times in a worker on
#     a shared 2e6-string vector (1000 distinct values)
#   data frames: share() of 1000 columns x 1e4 rows; serialize() size of it
#   element access: x[i], 1e6 random indices, shared 1e7 doubles, in a worker
#
# Environment: MORI_CMP_SCALE (sizes, default 1), MORI_CMP_REPS (quick
# timings, default 5), MORI_CMP_BOOT_REPS (default 3), MORI_CMP_DAEMONS (4),
# MORI_CMP_OURS_LIB (/opt/mori-ours-lib), MORI_CMP_REF_LIB (/opt/mori-ref-lib),
# MORI_CMP_ONLY=share (only the share() rows, into compare-reference-share.*).
# Output: bench/results/compare-reference.csv and compare-reference.png.

source(file.path(dirname(sub("^--file=", "", grep("^--file=", c(commandArgs(FALSE), "--file=bench/."), value = TRUE)[1L])), "common.R"))
source(file.path(bench_dir, "compare-common.R"))
t_start <- Sys.time()

scale <- env_num("MORI_CMP_SCALE", 1)
reps <- as.integer(env_num("MORI_CMP_REPS", 5))
boot_reps <- as.integer(env_num("MORI_CMP_BOOT_REPS", 3))
n_daemons <- as.integer(env_num("MORI_CMP_DAEMONS", 4))
share_only <- identical(Sys.getenv("MORI_CMP_ONLY"), "share")
sz <- function(n) max(10L, as.integer(round(n * scale)))

CMP_LIBS <- list(ours = Sys.getenv("MORI_CMP_OURS_LIB", "/opt/mori-ours-lib"),
                 reference = Sys.getenv("MORI_CMP_REF_LIB", "/opt/mori-ref-lib"),
                 plain = "")
for (impl in c("ours", "reference")) {
  if (!file.exists(file.path(CMP_LIBS[[impl]], "mori", "DESCRIPTION")))
    stop("no mori in ", CMP_LIBS[[impl]], " (run bench/compare-reference.sh)")
}
if ("mori" %in% rownames(utils::installed.packages()))
  message("note: a mori is also installed in the default library; it is never used here")
CMP_CFG <- list(
  vec_n = sz(25e6),          # 200 MB of doubles
  df_n = sz(5e6),            # 5 columns: 200 MB
  boot_n = sz(2e6),          # 5 columns: 80 MB
  str_n = sz(1e6),           # distinct strings
  streq_n = sz(2e6),         # strings from a pool of 1000
  wide_rows = sz(1e4), wide_cols = 1000L,
  acc_n = sz(1e7), idx_n = sz(1e6))
impls <- c("ours", "reference")
all3 <- c("ours", "reference", "plain")
ver <- function(impl) read.dcf(file.path(CMP_LIBS[[impl]], "mori", "DESCRIPTION"), "Version")[1, 1]
vec_mb <- CMP_CFG$vec_n * 8 / 1e6
cat(sprintf("# compare-reference: ours (mori %s, %s) vs reference (mori %s, %s)\n",
            ver("ours"), CMP_LIBS$ours, ver("reference"), CMP_LIBS$reference))
cat(sprintf("# %s, %d cores, %s; scale %g, %d reps (bootstrap %d, %d daemons)\n",
            R.version.string, parallel::detectCores(), format(Sys.time()), scale, reps,
            boot_reps, n_daemons))

wdir <- tempfile("mori-cmp-", tmpdir = "/tmp")
dir.create(wdir)
CMP_OWNERS <- list()
cleanup <- function() {
  for (s in CMP_OWNERS) try(s$close(), silent = TRUE)
  unlink(wdir, recursive = TRUE)
}

# ---------------------------------------------------------------------------
# Owner sessions and their data (the same values in each)

owner_init <- function() {
  if (IMPL != "plain") suppressPackageStartupMessages(library(mori))
  # mirai daemons started from this session find the same library first
  Sys.setenv(R_LIBS = paste(.libPaths(), collapse = ":"))
  D <- new.env()
  set.seed(1)
  D$vec <- stats::rnorm(CFG$vec_n)
  D$df <- as.data.frame(stats::setNames(lapply(1:5, function(i) stats::rnorm(CFG$df_n)),
                                        paste0("x", 1:5)))
  D$boot <- as.data.frame(stats::setNames(lapply(1:5, function(i) stats::rnorm(CFG$boot_n)),
                                          paste0("x", 1:5)))
  D$str <- paste0("s", sample.int(CFG$str_n))
  D$streq <- sample(c("a", paste0("v", 1:999)), CFG$streq_n, replace = TRUE)
  D$wide <- as.data.frame(matrix(stats::rnorm(CFG$wide_rows * CFG$wide_cols),
                                 ncol = CFG$wide_cols))
  D$acc <- stats::rnorm(CFG$acc_n)
  D$kept <- list()
  assign("D", D, envir = .GlobalEnv)
  invisible(gc())
  list(pid = Sys.getpid(), version = if (IMPL == "plain") "" else format(utils::packageVersion("mori")))
}

cat("# starting owner sessions and making the data ...\n")
for (impl in all3) {
  CMP_OWNERS[[impl]] <- start_owner(impl)
  info <- owner_run(impl, owner_init)
  cat(sprintf("#   %-9s pid %d %s\n", impl, info$pid,
              if (nzchar(info$version)) paste("mori", info$version) else "(no mori)"))
}

# ---------------------------------------------------------------------------
# Output (`suffix`: "" for a full run, "-share" for MORI_CMP_ONLY=share)

write_output <- function(suffix) {
  for (impl in all3) owner_run(impl, function() { D$kept <- list(); invisible(gc()) })
  cleanup()
  if ("mori" %in% loadedNamespaces()) stop("the driver process loaded mori")

  res <- do.call(rbind, CMP_ROWS)
  cat(sprintf("\n== ours (mori %s) vs reference (CRAN mori %s), %s, %d cores ==\n",
              ver("ours"), ver("reference"), R.version.string, parallel::detectCores()))
  cat("ratio = ours / reference (< 1: ours faster / smaller; memory below 1 MB counts as 1 MB);",
      "times are medians of interleaved runs\n")
  print_results(res)
  notes <- res[nzchar(res$note), c("measure", "note")]
  if (nrow(notes)) {
    cat("\nnotes:\n")
    for (i in seq_len(nrow(notes))) cat("  ", notes$measure[i], ": ", notes$note[i], "\n", sep = "")
  }

  out_dir <- file.path(bench_dir, "results")
  dir.create(out_dir, showWarnings = FALSE)
  res$r_version <- R.version.string
  res$ours_version <- ver("ours")
  res$reference_version <- ver("reference")
  res$scale <- scale
  res <- with_bench_meta(res)
  csv <- file.path(out_dir, paste0("compare-reference", suffix, ".csv"))
  utils::write.csv(res, csv, row.names = FALSE)
  png <- file.path(out_dir, paste0("compare-reference", suffix, ".png"))
  plot_ratios(res, png, sprintf("ours (mori %s) vs CRAN mori %s, %s, %d cores",
                                ver("ours"), ver("reference"), R.version.string,
                                parallel::detectCores()))
  cat("wrote ", csv, " and ", png, sprintf(" (%.0f s in all)\n",
      as.numeric(difftime(Sys.time(), t_start, units = "secs"))), sep = "")
}

# ---------------------------------------------------------------------------
# share() times (plain: serialize(), what sending without mori costs)

share_time <- function(what) {
  x <- D[[what]]
  invisible(gc())
  if (IMPL == "plain") {
    t <- tsec(s <- serialize(x, NULL))
    ok <- TRUE
  } else {
    t <- tsec(s <- share_(x))
    ok <- is_sh(s)
  }
  rm(s)
  invisible(gc())
  c(t = t, shared = ok)
}
time_share <- function(what, label, note = "") {
  r <- interleave(all3, reps, function(impl, rep) owner_run(impl, share_time, list(what = what)))
  t <- lapply(r, function(l) vapply(l, `[[`, 0, "t"))
  sh <- vapply(r[impls], function(l) all(vapply(l, `[[`, 0, "shared") == 1), TRUE)
  if (!all(sh)) note <- paste(c(note, paste("not shared by:", paste(impls[!sh], collapse = ", "))),
                              collapse = "; ")
  add_row(label, "s", t$ours, t$reference, t$plain, "serialize()", note = note)
}

cat("\n# share() ...\n")
time_share("vec", sprintf("share() %.0f MB double vector", vec_mb))
time_share("df", sprintf("share() %.0f MB data frame (5 cols)", CMP_CFG$df_n * 40 / 1e6))
time_share("str", sprintf("share() %s distinct strings", format(CMP_CFG$str_n, big.mark = ",")))
time_share("wide", sprintf("share() data frame %d cols x %s rows", CMP_CFG$wide_cols,
                           format(CMP_CFG$wide_rows, big.mark = ",")))
if (share_only) {
  write_output("-share")
  quit(save = "no")
}

# ---------------------------------------------------------------------------
# Objects kept shared for the rest of the run; their serialized bytes go to
# files that workers read (plain: the plain bytes).

keep <- function(what, dir) {
  s <- share_(D[[what]])
  D$kept[[what]] <- s
  file <- file.path(dir, paste0(IMPL, "-", what, ".bin"))
  b <- serialize(s, NULL)
  writeBin(b, file)
  list(file = file, bytes = length(b), shared = IMPL == "plain" || is_sh(s))
}
kept <- list()
for (impl in all3) {
  kept[[impl]] <- lapply(c(vec = "vec", df = "df", streq = "streq", acc = "acc", wide = "wide"),
                         function(w) owner_run(impl, keep, list(what = w, dir = wdir)))
}
col_bytes <- function() length(serialize(D$kept$df$x1, NULL))
cb <- lapply(setNames(all3, all3), function(impl) owner_run(impl, col_bytes))
bytes <- function(what) vapply(all3, function(i) as.numeric(kept[[i]][[what]]$bytes), 0)

cat("\n# bytes per task ...\n")
b <- bytes("df")
add_row(sprintf("bytes per task: serialize(share(df)), %.0f MB df", CMP_CFG$df_n * 40 / 1e6), "bytes", b[["ours"]], b[["reference"]],
        b[["plain"]], "serialize(df)")
add_row("bytes per task: one column of share(df)", "bytes", cb$ours, cb$reference, cb$plain,
        "serialize(df$x1)")
b <- bytes("wide")
add_row(sprintf("bytes: serialize(share(df)), %d cols df", CMP_CFG$wide_cols), "bytes",
        b[["ours"]], b[["reference"]], b[["plain"]], "serialize(df)")

# ---------------------------------------------------------------------------
# Open latency: a fresh worker unserializes the reference and reads x[1]

w_open <- function(file, warm) {
  bytes <- read_bytes(file)
  if (warm && IMPL != "plain") loadNamespace("mori")
  invisible(gc())
  t <- tsec({
    x <- unserialize(bytes)
    v <- x[1L]
  })
  c(t = t, v = v)
}
cat("\n# open latency (fresh workers) ...\n")
for (warm in c(FALSE, TRUE)) {
  r <- interleave(all3, reps, function(impl, rep)
    worker_run(impl, w_open, list(file = kept[[impl]]$vec$file, warm = warm)))
  t <- lapply(r, function(l) 1000 * vapply(l, `[[`, 0, "t"))
  v <- unique(unlist(lapply(r, function(l) vapply(l, `[[`, 0, "v"))))
  add_row(sprintf("open: unserialize + x[1], %.0f MB vector, %s", vec_mb,
                  if (warm) "mori loaded" else "incl. loading mori"),
          "ms", t$ours, t$reference, t$plain, "unserialize plain bytes",
          note = if (length(v) != 1L) "x[1] differs between implementations" else "")
}

# ---------------------------------------------------------------------------
# Worker private memory: receive the 200 MB vector, then read-only C code

w_mem <- function(file) {
  if (IMPL != "plain") loadNamespace("mori")
  a0 <- gc_anon_mb()
  bytes <- read_bytes(file)
  x <- unserialize(bytes)
  rm(bytes)
  a1 <- gc_anon_mb()
  v <- x[1L]; a2 <- gc_anon_mb()
  r1 <- var(x); a3 <- gc_anon_mb()
  r2 <- sort(x); a4 <- gc_anon_mb()
  r3 <- crossprod(x); a5 <- gc_anon_mb()
  res_mb <- size_mb(r1) + size_mb(r2) + size_mb(r3)
  c(unserialize = a1 - a0, first = a2 - a1, var = a3 - a2 - size_mb(r1),
    sort = a4 - a3 - size_mb(r2), crossprod = a5 - a4 - size_mb(r3),
    receive = a2 - a0, total = a5 - a0 - res_mb,
    still_shared = is_sh(x), var_value = r1, cp_value = r3)
}
cat("\n# worker memory ...\n")
mem <- lapply(setNames(all3, all3), function(impl)
  worker_run(impl, w_mem, list(file = kept[[impl]]$vec$file), env = malloc_env))
g <- function(k) lapply(mem, function(m) m[[k]])
steps <- function(impl) {
  m <- mem[[impl]]
  sprintf("%s %.1f/%.1f/%.1f/%.1f/%.1f", impl, m[["unserialize"]], m[["first"]], m[["var"]],
          m[["sort"]], m[["crossprod"]])
}
same <- length(unique(signif(vapply(mem, function(m) m[["var_value"]], 0), 12))) == 1L
m <- g("receive")
add_row(sprintf("worker private memory: unserialize + x[1], %.0f MB vector", vec_mb), "MB",
        m$ours, m$reference, m$plain, "plain copy", floor = 1)
m <- g("total")
add_row("worker private memory: + var(), sort(), crossprod() - results", "MB",
        m$ours, m$reference, m$plain, "plain copy", floor = 1,
        note = paste0("growth (MB) at unserialize/x[1]/var/sort/crossprod: ",
                      paste(vapply(all3, steps, ""), collapse = ", "),
                      sprintf("; is_shared() after: ours %s, reference %s",
                              as.logical(mem$ours[["still_shared"]]),
                              as.logical(mem$reference[["still_shared"]])),
                      if (!same) "; var() results differ" else ""))

# ---------------------------------------------------------------------------
# Strings: x == "a" three times in a worker that received the vector

w_streq <- function(file, n) {
  x <- unserialize(read_bytes(file))
  invisible(gc())
  t <- numeric(n)
  for (i in seq_len(n)) t[i] <- tsec(r <- x == "a")
  c(t, count = sum(r))
}
cat("\n# strings ...\n")
s <- lapply(setNames(all3, all3), function(impl)
  worker_run(impl, w_streq, list(file = kept[[impl]]$streq$file, n = 3L)))
cnt <- unique(vapply(s, function(v) v[["count"]], 0))
nstr <- format(CMP_CFG$streq_n, big.mark = ",")
for (k in 1:3) {
  add_row(sprintf("x == \"a\" on %s shared strings (worker), run %d", nstr, k), "s",
          s$ours[[k]], s$reference[[k]], s$plain[[k]], "plain vector",
          note = if (length(cnt) != 1L) "results differ" else "")
}

# ---------------------------------------------------------------------------
# Element access: x[i] with random indices in a worker

w_index <- function(file, n_idx, reps) {
  x <- unserialize(read_bytes(file))
  set.seed(2)
  i <- sample.int(length(x), n_idx, replace = TRUE)
  invisible(gc())
  t <- numeric(reps)
  for (k in seq_len(reps)) t[k] <- tsec(y <- x[i])
  list(t = t, check = sum(y))
}
cat("\n# element access ...\n")
ea <- lapply(setNames(all3, all3), function(impl)
  worker_run(impl, w_index, list(file = kept[[impl]]$acc$file, n_idx = CMP_CFG$idx_n,
                                 reps = reps + 1L)))
chk <- unique(vapply(ea, `[[`, 0, "check"))
# the first run maps the pages: reported separately
add_row(sprintf("x[i], %s random i, %s shared doubles, 1st run (worker)",
                format(CMP_CFG$idx_n, big.mark = ","), format(CMP_CFG$acc_n, big.mark = ",")),
        "ms", 1000 * ea$ours$t[1], 1000 * ea$reference$t[1], 1000 * ea$plain$t[1], "plain vector")
add_row(sprintf("x[i], %s random i, %s shared doubles, later runs",
                format(CMP_CFG$idx_n, big.mark = ","), format(CMP_CFG$acc_n, big.mark = ",")),
        "ms", 1000 * ea$ours$t[-1], 1000 * ea$reference$t[-1], 1000 * ea$plain$t[-1], "plain vector",
        note = if (length(chk) != 1L) "results differ" else "")

# ---------------------------------------------------------------------------
# Seed bootstrap on mirai daemons (started by the owner session)

boot_task <- function(i, data) {
  t0 <- Sys.time()
  m <- colMeans(data[sample(nrow(data), replace = TRUE), ])
  t <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
  p <- if ("mori" %in% loadedNamespaces()) normalizePath(getNamespaceInfo("mori", "path")) else ""
  list(m = m, pid = Sys.getpid(), path = p, t = t)
}
boot_run <- function(n_daemons, task) {
  environment(task) <- globalenv()
  d <- D$boot
  t_share <- 0
  if (IMPL != "plain") t_share <- tsec(d <- share_(D$boot))
  mirai::daemons(n_daemons)
  on.exit(mirai::daemons(0))
  mirai::everywhere({
    .libPaths(unique(c(lib, .libPaths())))
    if (impl != "plain") loadNamespace("mori")
  }, lib = LIB, impl = IMPL)
  # warm-up on a small object of the same kind: every daemon connected
  small <- share_(D$boot[1:1000, ])
  invisible(mirai::mirai_map(seq_len(n_daemons), task, .args = list(data = small))[])
  invisible(gc())
  t <- tsec(out <- mirai::mirai_map(seq_len(n_daemons), task, .args = list(data = d))[])
  err <- vapply(out, function(o) mirai::is_error_value(o) || !is.list(o), TRUE)
  if (any(err)) stop("bootstrap task failed: ", paste(format(out[err][[1]]), collapse = " "))
  paths <- unique(vapply(out, `[[`, "", "path"))
  want <- if (IMPL == "plain") "" else normalizePath(file.path(LIB, "mori"))
  if (!identical(paths, want)) stop("daemons loaded mori from ", paste(paths, collapse = ", "))
  list(t = t, t_share = t_share, bytes = length(serialize(list(data = d), NULL)),
       t_task = mean(vapply(out, `[[`, 0, "t")),
       daemons = length(unique(vapply(out, `[[`, 0, "pid"))))
}
cat(sprintf("\n# seed bootstrap (%d daemons, %s x 5 doubles, %d runs each) ...\n",
            n_daemons, format(CMP_CFG$boot_n, big.mark = ","), boot_reps))
bt <- interleave(all3, boot_reps, function(impl, rep)
  owner_run(impl, boot_run, list(n_daemons = n_daemons, task = boot_task)))
tb <- lapply(bt, function(l) vapply(l, `[[`, 0, "t"))
ts <- lapply(bt, function(l) vapply(l, function(e) e$t + e$t_share, 0))
used <- unique(unlist(lapply(bt, function(l) vapply(l, `[[`, 0, "daemons"))))
lbl <- sprintf("seed bootstrap wall, %d daemons, %s x 5", n_daemons, format(CMP_CFG$boot_n, big.mark = ","))
add_row(lbl, "s", tb$ours, tb$reference, tb$plain, "data sent plainly",
        note = sprintf("daemons used per map: %s", paste(used, collapse = "/")))
add_row(paste(lbl, "incl. share()"), "s", ts$ours, ts$reference, ts$plain, "data sent plainly")
tt <- lapply(bt, function(l) vapply(l, `[[`, 0, "t_task"))
add_row("seed bootstrap: one task's time in its daemon (mean)", "s", tt$ours, tt$reference, tt$plain,
        "plain data", note = "elapsed inside the task, after the data arrived (the tasks share the cores)")

# ---------------------------------------------------------------------------
# Output

write_output("")
