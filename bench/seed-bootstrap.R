# The headline scenario: a bootstrap over a large data frame on mirai daemons,
# with the data sent plainly vs shared with share().
#
# A data frame of 5 double columns x N rows (N = MORI_BENCH_N, default 5e6,
# i.e. 200 MB) and MORI_BENCH_DAEMONS daemons (default 4). Each task computes
#   colMeans(data[sample(nrow(data), replace = TRUE), ])
# and there is one task per daemon. Reported for each mode: wall time of the
# whole map (median of MORI_BENCH_REPS runs, default 1: a run takes minutes here), bytes sent per task
# (length(serialize(list(data = data), NULL))), the daemons' PSS measured
# inside each task before it returns (data still in use), and the sum of the
# daemons' PSS read from /proc after the run. Fresh daemons for each mode.
#
# Uses purrr::in_parallel() when purrr >= 1.1 (and its dependency carrier) is
# installed, else mirai::mirai_map().
#
# Reference figures from the mori 0.2.2 announcement (other hardware,
# 8 daemons): 10.45 s plain -> 4.96 s shared, ~300 bytes per task.
#
# Note: most of a task's time is `[.data.frame` making unique row names for
# the resampled rows (~8 s for 5e6 rows here), the same in both modes; on
# 2 cores with 4 daemons the tasks also queue for CPU, so the share() gain is
# only the transfer part of the wall time.
#
# Usage: Rscript bench/seed-bootstrap.R
#        MORI_BENCH_N=1e6 MORI_BENCH_DAEMONS=2 Rscript bench/seed-bootstrap.R

source(file.path(dirname(sub("^--file=", "", grep("^--file=", c(commandArgs(FALSE), "--file=bench/."), value = TRUE)[1L])), "common.R"))
bench_start("seed-bootstrap: bootstrap colMeans on mirai daemons, plain vs shared")

N <- as.integer(env_num("MORI_BENCH_N", 5e6))
n_daemons <- as.integer(env_num("MORI_BENCH_DAEMONS", 4))
reps <- as.integer(env_num("MORI_BENCH_REPS", 1))

use_purrr <- requireNamespace("purrr", quietly = TRUE) &&
  utils::packageVersion("purrr") >= "1.1.0" &&
  requireNamespace("carrier", quietly = TRUE)
engine <- if (use_purrr) "purrr::in_parallel" else "mirai::mirai_map"

set.seed(1)
data <- as.data.frame(setNames(lapply(1:5, function(i) rnorm(N)), paste0("x", 1:5)))
cat(sprintf("# data: %d x 5 doubles = %.0f MB; %d daemons; %d reps; engine %s\n",
            N, mb_of(data), n_daemons, reps, engine))

# The task: returns its result plus the daemon's own pid and memory, read
# while the data is still referenced.
task <- function(i, data) {
  res <- colMeans(data[sample(nrow(data), replace = TRUE), ])
  sm <- readLines("/proc/self/smaps_rollup")
  kb <- function(key) as.numeric(sub("^[^:]+:\\s+([0-9]+) kB.*$", "\\1",
                                     grep(paste0("^", key, ":"), sm, value = TRUE)))
  list(means = res, pid = Sys.getpid(), pss_mb = kb("Pss") / 1024,
       private_mb = kb("Anonymous") / 1024)
}

run_map <- function(d) {
  if (use_purrr) {
    f <- purrr::in_parallel(function(i) task(i, data), task = task, data = d)
    purrr::map(seq_len(n_daemons), f)
  } else {
    mirai::mirai_map(seq_len(n_daemons), task, .args = list(data = d))[]
  }
}

run_mode <- function(mode) {
  mirai::daemons(n_daemons)
  on.exit(mirai::daemons(0))
  # Warm up: every daemon connected and idle.
  pids <- unlist(mirai::everywhere(Sys.getpid())[])
  t_share <- 0
  d <- data
  if (mode == "shared") {
    t_share <- elapsed(d <- share(data))
  }
  # Warm up the engine (loads purrr/carrier, and mori for shared data) on a
  # tiny object of the same kind.
  small <- data[1:100, ]
  if (mode == "shared") small <- share(small)
  invisible(run_map(small))
  bytes <- length(serialize(list(data = d), NULL))
  times <- numeric(reps)
  out <- NULL
  for (r in seq_len(reps)) {
    invisible(gc())
    times[r] <- elapsed(out <- run_map(d))
  }
  task_pids <- vapply(out, `[[`, 0, "pid")
  in_task_pss <- sum(vapply(out, `[[`, 0, "pss_mb"))
  in_task_private <- sum(vapply(out, `[[`, 0, "private_mb"))
  Sys.sleep(0.5)
  after_pss <- sum_pss_mb(pids)
  data.frame(mode = mode, engine = engine, daemons = n_daemons, rows = N,
             data_mb = mb_of(data), share_s = t_share,
             wall_s_median = stats::median(times), wall_s_min = min(times),
             wall_s_all = paste(sprintf("%.2f", times), collapse = " "),
             total_s = t_share + stats::median(times),
             bytes_per_task = bytes,
             distinct_daemons_used = length(unique(task_pids)),
             in_task_pss_mb = in_task_pss, in_task_private_mb = in_task_private,
             pss_after_run_mb = after_pss)
}

cat("# plain run ...\n")
plain <- run_mode("plain")
cat("# shared run ...\n")
shared <- run_mode("shared")
res <- rbind(plain, shared)

print_table(res[, c("mode", "share_s", "wall_s_median", "wall_s_min", "total_s",
                    "bytes_per_task", "in_task_pss_mb", "in_task_private_mb",
                    "pss_after_run_mb")],
            sprintf("%d daemons, %d tasks, %.0f MB data frame (wall times: %s)",
                    n_daemons, n_daemons, mb_of(data), engine))
cat("wall times of each rep: plain ", plain$wall_s_all, "; shared ", shared$wall_s_all, "\n", sep = "")

ratios <- data.frame(
  measure = c("wall time (median run)", "wall time incl. share()", "bytes sent per task",
              "daemons' PSS in task", "daemons' private memory in task",
              "daemons' PSS after run"),
  plain = c(plain$wall_s_median, plain$total_s, plain$bytes_per_task,
            plain$in_task_pss_mb, plain$in_task_private_mb, plain$pss_after_run_mb),
  shared = c(shared$wall_s_median, shared$total_s, shared$bytes_per_task,
             shared$in_task_pss_mb, shared$in_task_private_mb, shared$pss_after_run_mb)
)
ratios$plain_over_shared <- ratio(ratios$plain, ratios$shared)
print_table(ratios, "ratios plain / shared")
cat("reference (mori 0.2.2 announcement, 8 daemons, other hardware): 10.45 s -> 4.96 s",
    "(2.1x), ~300 bytes per task\n")
write_results(res, "seed-bootstrap")
