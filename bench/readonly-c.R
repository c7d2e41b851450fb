# Read-only C code on a shared object in several workers.
#
# MORI_BENCH_NWORKERS PSOCK workers (default 4) receive a double matrix of
# MORI_BENCH_MB MB (default 200; 5 columns), plain or shared, and run C code
# that only reads it: var(m), crossprod(m), colMeans(m) and sort(m) (whose
# sorted copy is its result and is dropped). For each worker we read PSS and
# private memory (Anonymous) from /proc before the data arrives, after it
# arrives, and after the calls (after a gc in the worker), and report the
# extra PSS per worker. Shared data should cost each worker only its share of
# the pages (data / workers; data / (workers + 1) if this process, the owner,
# has the pages mapped too, which it does only once it has read them) and no
# private memory, also after C code asked for pointers to it.
#
# Usage: Rscript bench/readonly-c.R   (MORI_BENCH_MB=50 for a quick run)

source(file.path(dirname(sub("^--file=", "", grep("^--file=", c(commandArgs(FALSE), "--file=bench/."), value = TRUE)[1L])), "common.R"))
library(parallel)
bench_start("readonly-c: extra PSS per worker after read-only C code, plain vs shared")

mb <- bench_mb(200)
nw <- as.integer(env_num("MORI_BENCH_NWORKERS", 4))
n <- as.integer(round(mb * 1e6 / 8))
set.seed(3)
m <- matrix(rnorm(n), ncol = 5L)
sm <- share(m)
cat(sprintf("# matrix %d x 5 doubles (%.0f MB); %d workers\n", nrow(m), mb_of(m), nw))

old_env <- Sys.getenv(names(worker_malloc_env()), unset = NA)
do.call(Sys.setenv, as.list(worker_malloc_env()))

receive <- function(d) {
  assign(".m", d, envir = .GlobalEnv)
  invisible(gc(full = TRUE))
  NULL
}
run_calls <- function() {
  m <- get(".m", envir = .GlobalEnv)
  t <- c(
    var = system.time(v <- var(m))[["elapsed"]],
    crossprod = system.time(cp <- crossprod(m))[["elapsed"]],
    colMeans = system.time(cm <- colMeans(m))[["elapsed"]],
    sort = system.time(len <- length(sort(m)))[["elapsed"]]
  )
  invisible(gc(full = TRUE))
  t
}

mem <- function(pids) data.frame(pss = vapply(pids, pss_mb, 0), private = vapply(pids, private_mb, 0))

rows <- list()
for (mode in c("plain", "shared")) {
  cat(sprintf("# %s ...\n", mode))
  cl <- makePSOCKcluster(nw)
  pids <- unlist(clusterCall(cl, function() { invisible(gc(full = TRUE)); Sys.getpid() }))
  m0 <- mem(pids)
  obj <- if (mode == "shared") sm else m
  t_recv <- elapsed(clusterCall(cl, receive, obj))
  m1 <- mem(pids)
  t_wall <- elapsed(times <- clusterCall(cl, run_calls))
  m2 <- mem(pids)
  stopCluster(cl)
  times <- do.call(rbind, times)
  rows[[mode]] <- data.frame(
    mode = mode, workers = nw, data_mb = mb_of(m),
    idle_pss_mb_per_worker = mean(m0$pss),
    extra_pss_after_receive_mb = mean(m1$pss - m0$pss),
    extra_pss_after_calls_mb = mean(m2$pss - m0$pss),
    extra_private_after_calls_mb = mean(m2$private - m0$private),
    calls_extra_private_mb = mean(m2$private - m1$private),
    receive_s = t_recv, calls_wall_s = t_wall,
    var_s = mean(times[, "var"]), crossprod_s = mean(times[, "crossprod"]),
    colMeans_s = mean(times[, "colMeans"]), sort_s = mean(times[, "sort"]))
}
res <- do.call(rbind, rows)

for (nm in names(old_env)) {
  if (is.na(old_env[[nm]])) Sys.unsetenv(nm) else do.call(Sys.setenv, as.list(old_env[nm]))
}

print_table(res[, c("mode", "extra_pss_after_receive_mb", "extra_pss_after_calls_mb",
                    "extra_private_after_calls_mb", "calls_extra_private_mb")],
            sprintf("per worker (mean of %d), MB; %.0f MB matrix", nw, mb_of(m)))
print_table(res[, c("mode", "receive_s", "calls_wall_s", "var_s", "crossprod_s",
                    "colMeans_s", "sort_s")],
            "seconds (per-call times are means over workers, run concurrently)")
p <- res[res$mode == "plain", ]
s <- res[res$mode == "shared", ]
cat(sprintf("\nratio plain/shared of extra PSS per worker after calls: %.1f\n",
            p$extra_pss_after_calls_mb / s$extra_pss_after_calls_mb))
cat(sprintf(paste0("expected: about %d (data / workers = %.1f MB per worker), or %d when this process\n",
                   "has its own pages of the region mapped too (data / %d = %.1f MB)\n"),
            nw, mb_of(m) / nw, nw + 1L, nw + 1L, mb_of(m) / (nw + 1)))
write_results(res, "readonly-c")
