# Helpers shared by the benchmark scripts in bench/.
#
# Each script starts with the one line
#   source(file.path(dirname(sub("^--file=", "", grep("^--file=", c(commandArgs(FALSE), "--file=bench/."), value = TRUE)[1L])), "common.R"))
# which finds this file next to the script (under Rscript; "bench/" from the
# repository root otherwise), then calls bench_start("name: what it measures"),
# which loads mori and prints the run's header.
#
# Everything here uses base R only, so the memory readers can be sent to
# worker processes (their environment is the global environment, which
# serializes as a reference to the receiver's global environment).

# Wide enough that the tables print without wrapping columns.
options(width = max(getOption("width"), 130L))

# ---------------------------------------------------------------------------
# Where things are

bench_script_dir <- function() {
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1L]))) else "bench"
}
bench_dir <- bench_script_dir()

bench_results_dir <- function(dir = bench_dir) {
  out <- file.path(dir, "results")
  dir.create(out, showWarnings = FALSE, recursive = TRUE)
  out
}

# The R helper that compiles C sources with R CMD SHLIB, shared with the tests.
source(file.path(bench_dir, "..", "tests", "testthat", "helper-shlib.R"))

# ---------------------------------------------------------------------------
# Settings from environment variables

# Size of the main data object in MB (MORI_BENCH_MB, default `default`).
bench_mb <- function(default = 200) {
  v <- Sys.getenv("MORI_BENCH_MB", "")
  if (nzchar(v)) as.numeric(v) else default
}

env_num <- function(name, default) {
  v <- Sys.getenv(name, "")
  if (nzchar(v)) as.numeric(v) else default
}

# ---------------------------------------------------------------------------
# Memory readers (Linux /proc)

# All fields of /proc/<pid>/smaps_rollup, in kB, as a named numeric vector.
smaps_rollup_kb <- function(pid = "self") {
  lines <- readLines(sprintf("/proc/%s/smaps_rollup", pid), warn = FALSE)
  lines <- grep("^[A-Za-z_]+:\\s+[0-9]+ kB", lines, value = TRUE)
  key <- sub(":.*$", "", lines)
  val <- as.numeric(sub("^[^:]+:\\s+([0-9]+) kB.*$", "\\1", lines))
  names(val) <- key
  val
}

# Private memory of a process in MB: the `Anonymous:` field (anonymous
# pages: R's heap, malloc'd buffers and copy-on-write copies of file or
# shared-memory pages once written).
private_mb <- function(pid = "self") {
  unname(smaps_rollup_kb(pid)["Anonymous"]) / 1024
}

# Proportional set size in MB: private pages plus each shared page divided
# by the number of processes mapping it.
pss_mb <- function(pid = "self") {
  unname(smaps_rollup_kb(pid)["Pss"]) / 1024
}

rss_mb <- function(pid = "self") {
  unname(smaps_rollup_kb(pid)["Rss"]) / 1024
}

# Private memory after a full garbage collection (so that garbage from an
# earlier call does not count).
private_mb_gc <- function() {
  invisible(gc(full = TRUE))
  private_mb("self")
}

# Environment variables for worker processes whose memory we measure: a
# fixed glibc mmap threshold (which also turns off its dynamic growth) so
# that every allocation over 64 KB is its own mapping and is returned to the
# system when freed, and trimming of the heap top. Without this, malloc keeps
# freed buffers of up to 32 MB and reuses them, so "memory after a call"
# would depend on what earlier calls freed.
worker_malloc_env <- function() {
  c(MALLOC_MMAP_THRESHOLD_ = "65536", MALLOC_TRIM_THRESHOLD_ = "131072")
}

sum_pss_mb <- function(pids) sum(vapply(pids, pss_mb, numeric(1)))

# ---------------------------------------------------------------------------
# Timing

# Elapsed seconds of evaluating `expr` (in the caller's frame).
elapsed <- function(expr) {
  t0 <- proc.time()[["elapsed"]]
  force(expr)
  proc.time()[["elapsed"]] - t0
}

# Run `f()` `reps` times; return the elapsed seconds of each run.
time_reps <- function(f, reps = 3L, gc_first = TRUE) {
  vapply(seq_len(reps), function(i) {
    if (gc_first) invisible(gc())
    t0 <- proc.time()[["elapsed"]]
    f()
    proc.time()[["elapsed"]] - t0
  }, numeric(1))
}

# Seconds per call of f(), repeated until at least `min_time` has passed,
# best of three such batches (sub-microsecond calls are timed in bulk).
per_call <- function(f, min_time = 0.2) {
  f()
  best <- Inf
  for (b in 1:3) {
    k <- 0
    t0 <- proc.time()[["elapsed"]]
    repeat {
      f()
      k <- k + 1
      t <- proc.time()[["elapsed"]] - t0
      if (t >= min_time) break
    }
    best <- min(best, t / k)
  }
  best
}

# ---------------------------------------------------------------------------
# The floor of share(): a C program (compiled on the fly with gcc) that
# creates fresh shared pages and copies bytes into them, no R involved.

floor_src <- '
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* usage: floor <bytes> <reps> <mode>; mode 0 = fallocate, 1 = fallocate +
   MAP_POPULATE, 2 = ftruncate only, 3 = fallocate, then pwrite instead of
   a mapping (what share() does). Prints one time (seconds) per line. */
int main(int argc, char **argv) {
  if (argc < 4) return 2;
  size_t n = strtoull(argv[1], NULL, 10);
  int reps = atoi(argv[2]), mode = atoi(argv[3]);
  char *src = malloc(n);
  if (!src) return 3;
  for (size_t i = 0; i < n; i++) src[i] = (char)(i * 131u);  /* touch every page */
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    int fd = memfd_create("mori_bench_floor", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) { perror("memfd_create"); return 4; }
    if (mode == 2) {
      if (ftruncate(fd, (off_t)n) != 0) { perror("ftruncate"); return 5; }
    } else {
      if (fallocate(fd, 0, 0, (off_t)n) != 0) { perror("fallocate"); return 5; }
    }
    if (mode == 3) {
      for (size_t done = 0; done < n;) {
        size_t step = n - done < (1u << 20) ? n - done : (1u << 20);
        ssize_t w = pwrite(fd, src + done, step, (off_t)done);
        if (w <= 0) { perror("pwrite"); return 8; }
        done += (size_t)w;
      }
      double t1 = now();
      close(fd);
      printf("%.6f\\n", t1 - t0);
      continue;
    }
    int flags = MAP_SHARED | (mode == 1 ? MAP_POPULATE : 0);
    char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 6; }
    memcpy(p, src, n);
    double t1 = now();
    if (p[n / 2] != src[n / 2]) return 7;
    munmap(p, n);
    close(fd);
    printf("%.6f\\n", t1 - t0);
  }
  free(src);
  return 0;
}
'

compile_floor <- function() {
  if (!nzchar(Sys.which("gcc"))) {
    warning("gcc not found: no floor figures")
    return(NULL)
  }
  dir <- tempfile("mori-floor-")
  dir.create(dir)
  src <- file.path(dir, "floor.c")
  exe <- file.path(dir, "floor")
  writeLines(floor_src, src)
  st <- suppressWarnings(system2("gcc", c("-O2", "-o", exe, src), stdout = TRUE, stderr = TRUE))
  if (!file.exists(exe)) {
    warning("gcc failed: ", paste(st, collapse = "\n"))
    return(NULL)
  }
  exe
}
# Seconds per run of the floor program (NA without gcc).
floor_times <- function(bytes, reps, mode, floor_exe) {
  if (is.null(floor_exe)) return(rep(NA_real_, reps))
  out <- system2(floor_exe, c(format(bytes, scientific = FALSE), reps, mode), stdout = TRUE)
  as.numeric(out)
}

# ---------------------------------------------------------------------------
# The floor of per-element access to any ALTREP character vector: a minimal
# ALTSTRING class (compiled on the fly with R CMD SHLIB) whose Elt method is
# one load from a plain vector's elements. R calls Elt once per element
# (STRING_ELT -> ALTSTRING_ELT -> method), so what a loop like x == "a"
# costs on it is the dispatch alone. One floor object at a time.

altrep_floor_src <- '
#include <R.h>
#include <Rinternals.h>
#include <R_ext/Altrep.h>
#include <R_ext/Rdynload.h>

static R_altrep_class_t floor_class;
static const SEXP *floor_elts;
static SEXP floor_kept;

static R_xlen_t floor_length(SEXP x) { return XLENGTH(R_altrep_data1(x)); }
static SEXP floor_elt(SEXP x, R_xlen_t i) { return floor_elts[i]; }

SEXP floor_view(SEXP v) {
  if (TYPEOF(v) != STRSXP || ALTREP(v)) error("a plain character vector is needed");
  if (floor_kept) R_ReleaseObject(floor_kept);
  R_PreserveObject(floor_kept = v);
  floor_elts = STRING_PTR_RO(v);
  return R_new_altrep(floor_class, v, R_NilValue);
}

static const R_CallMethodDef floor_calls[] = {
  {"floor_view", (DL_FUNC) &floor_view, 1}, {NULL, NULL, 0}};

void R_init_altrep_floor(DllInfo *dll) {
  floor_class = R_make_altstring_class("floor_string", "altrep_floor", dll);
  R_set_altrep_Length_method(floor_class, floor_length);
  R_set_altstring_Elt_method(floor_class, floor_elt);
  R_registerRoutines(dll, NULL, floor_calls, NULL, NULL);
}
'

# Path of the compiled floor library, or NULL (with a warning) if it cannot
# be built. Load it with dyn.load() and make a view with
# .Call("floor_view", plain_character_vector).
compile_altrep_floor <- function() {
  tryCatch(compile_shlib(altrep_floor_src, "altrep_floor"), error = function(e) {
    warning("no ALTREP floor figures: ", conditionMessage(e))
    NULL
  })
}

# ---------------------------------------------------------------------------
# Data

# A data frame of `ncol` double columns totalling about `mb` MB.
make_df <- function(mb = 200, ncol = 5L, seed = 1L) {
  set.seed(seed)
  n <- as.integer(round(mb * 1e6 / 8 / ncol))
  cols <- lapply(seq_len(ncol), function(i) stats::rnorm(n))
  names(cols) <- paste0("x", seq_len(ncol))
  as.data.frame(cols)
}

mb_of <- function(x) as.numeric(utils::object.size(x)) / 2^20

# ---------------------------------------------------------------------------
# Output

fmt_table <- function(df, digits = 3) {
  out <- df
  for (j in seq_along(out)) {
    if (is.double(out[[j]])) {
      out[[j]] <- formatC(out[[j]], digits = digits, format = "fg", flag = "#")
      out[[j]] <- sub("\\.$", "", out[[j]])
    }
  }
  out
}

print_table <- function(df, title = NULL, digits = 3) {
  if (!is.null(title)) cat("\n== ", title, " ==\n", sep = "")
  print(fmt_table(df, digits), row.names = FALSE, right = TRUE)
  invisible(df)
}

# What every CSV records about the run: the commit measured (MORI_BENCH_COMMIT,
# else `git rev-parse --short HEAD` of this checkout, "-dirty" when files
# differ from it; NA without git, e.g. inside a chroot that has no .git), R's
# version and the number of cores.
bench_commit <- function(dir = bench_dir) {
  env <- Sys.getenv("MORI_BENCH_COMMIT", "")
  if (nzchar(env)) return(env)
  git <- function(...) {
    out <- tryCatch(suppressWarnings(system2("git", c("-C", shQuote(dir), ...), stdout = TRUE, stderr = FALSE)),
                    error = function(e) character())
    if (!is.null(attr(out, "status"))) character() else out
  }
  head <- git("rev-parse", "--short", "HEAD")
  if (!length(head)) return(NA_character_)
  dirty <- length(git("status", "--porcelain", "--untracked-files=no")) > 0
  paste0(head[1L], if (dirty) "-dirty")
}

bench_meta <- function() {
  list(commit = bench_commit(), r_version = paste(R.version$major, R.version$minor, sep = "."),
       cores = parallel::detectCores())
}

# `df` with the run's metadata columns (commit, r_version, cores) added where
# it does not have them already.
with_bench_meta <- function(df, meta = bench_meta()) {
  for (k in names(meta)) if (!k %in% names(df)) df[[k]] <- rep(meta[[k]], nrow(df))
  df
}

write_results <- function(df, name, dir = bench_results_dir()) {
  path <- file.path(dir, paste0(name, ".csv"))
  utils::write.csv(with_bench_meta(df), path, row.names = FALSE)
  cat("wrote ", path, "\n", sep = "")
  invisible(path)
}

bench_header <- function(title) {
  cat("# ", title, "\n", sep = "")
  meta <- bench_meta()
  cat("# mori ", as.character(utils::packageVersion("mori")),
      " (", find.package("mori"), "), commit ", meta$commit, ", ", R.version.string, ", ",
      meta$cores, " cores, ", format(Sys.time()), "\n", sep = "")
}

# The start of every script: load mori, print the header.
bench_start <- function(title) {
  suppressPackageStartupMessages(library(mori))
  bench_header(title)
}

ratio <- function(a, b) ifelse(b > 0, a / b, NA_real_)
