# Total memory of n workers holding the same data, plain vs shared.
#
# n PSOCK workers (parallel::makePSOCKcluster; n in MORI_BENCH_WORKERS,
# default "1,2,4,8") each receive a data frame of 5 double columns
# (MORI_BENCH_MB MB, default 200), keep it in their global environment and
# read every column once (mean of each column). We then read each worker's
# PSS from /proc/<pid>/smaps_rollup (after a gc in the worker) and add them
# up. Plain: the data frame is serialized to each worker, which holds its own
# copy. Shared: share() once in this process, each worker maps the same pages.
# (mean, not sum, reads the columns: mori answers sum() of a shared double
# vector from metadata stored at share() time, without reading it.)
#
# PSS splits a shared page evenly among the processes that have it mapped.
# This process (the owner of the shared region) does not read the data after
# share(), so its page tables hold none of the region's pages and the
# workers' total holds the whole region once. Idle workers' PSS (R itself)
# is measured first and reported apart.
#
# Writes bench/results/workers-memory.csv and workers-memory.png.
#
# Usage: Rscript bench/workers-memory.R
#        MORI_BENCH_MB=500 MORI_BENCH_WORKERS=1,2,4 Rscript bench/workers-memory.R

source(file.path(dirname(sub("^--file=", "", grep("^--file=", c(commandArgs(FALSE), "--file=bench/."), value = TRUE)[1L])), "common.R"))
library(parallel)
bench_start("workers-memory: total PSS of n workers holding a data frame, plain vs shared")

mb <- bench_mb(200)
ns <- as.integer(strsplit(Sys.getenv("MORI_BENCH_WORKERS", "1,2,4,8"), ",")[[1]])
df <- make_df(mb, 5L)
sdf <- share(df)
cat(sprintf("# data frame %d x 5 doubles (%.0f MB); workers: %s\n",
            nrow(df), mb_of(df), paste(ns, collapse = ", ")))

# Workers get the malloc settings that return freed memory to the system.
old_env <- Sys.getenv(names(worker_malloc_env()), unset = NA)
do.call(Sys.setenv, as.list(worker_malloc_env()))

hold_and_read <- function(d) {
  assign(".bench_data", d, envir = .GlobalEnv)
  s <- vapply(d, mean, 0)
  invisible(gc(full = TRUE))
  s
}

measure <- function(n, mode) {
  cl <- makePSOCKcluster(n)
  on.exit(stopCluster(cl))
  pids <- unlist(clusterCall(cl, function() { invisible(gc(full = TRUE)); Sys.getpid() }))
  idle <- sum_pss_mb(pids)
  obj <- if (mode == "shared") sdf else df
  t <- elapsed(sums <- clusterCall(cl, hold_and_read, obj))
  stopifnot(all(vapply(sums, function(s) isTRUE(all.equal(s, vapply(df, mean, 0))), NA)))
  pss <- vapply(pids, pss_mb, 0)
  priv <- vapply(pids, private_mb, 0)
  data.frame(mode = mode, workers = n, data_mb = mb_of(df), idle_pss_mb = idle,
             total_pss_mb = sum(pss), data_pss_mb = sum(pss) - idle,
             private_mb = sum(priv), send_and_read_s = t)
}

rows <- list()
for (n in ns) for (mode in c("plain", "shared")) {
  cat(sprintf("# %d worker(s), %s ...\n", n, mode))
  rows[[length(rows) + 1L]] <- measure(n, mode)
}
res <- do.call(rbind, rows)

for (nm in names(old_env)) {
  if (is.na(old_env[[nm]])) Sys.unsetenv(nm) else do.call(Sys.setenv, as.list(old_env[nm]))
}

wide <- data.frame(
  workers = ns,
  plain_total_pss_mb = res$total_pss_mb[res$mode == "plain"],
  shared_total_pss_mb = res$total_pss_mb[res$mode == "shared"],
  plain_data_pss_mb = res$data_pss_mb[res$mode == "plain"],
  shared_data_pss_mb = res$data_pss_mb[res$mode == "shared"],
  idle_pss_mb = res$idle_pss_mb[res$mode == "plain"]
)
wide$ratio_total_plain_shared <- wide$plain_total_pss_mb / wide$shared_total_pss_mb
wide$ratio_data_plain_shared <- wide$plain_data_pss_mb / wide$shared_data_pss_mb
print_table(wide, sprintf("workers' total PSS (MB), %.0f MB data frame each", mb_of(df)))
print_table(res[, c("mode", "workers", "private_mb", "send_and_read_s")],
            "workers' private (Anonymous) MB and time to send + read")
write_results(res, "workers-memory")

png_path <- file.path(bench_results_dir(), "workers-memory.png")
png(png_path, width = 800, height = 560, res = 110)
ylim <- c(0, max(res$total_pss_mb) * 1.08)
plot(wide$workers, wide$plain_total_pss_mb, type = "b", pch = 19, col = "firebrick",
     lwd = 2, ylim = ylim, xaxt = "n", xlab = "workers",
     ylab = "total PSS of the workers (MB)",
     main = sprintf("Workers holding a %.0f MB data frame", mb_of(df)))
axis(1, at = wide$workers)
lines(wide$workers, wide$shared_total_pss_mb, type = "b", pch = 17, col = "steelblue", lwd = 2)
lines(wide$workers, wide$idle_pss_mb, type = "b", pch = 1, col = "grey50", lty = 3)
legend("topleft", bty = "n",
       legend = c("plain (serialized copy)", "shared (mori::share)", "idle workers (R alone)"),
       col = c("firebrick", "steelblue", "grey50"), pch = c(19, 17, 1), lty = c(1, 1, 3), lwd = c(2, 2, 1))
grid()
invisible(dev.off())
cat("wrote ", png_path, "\n", sep = "")
