# Does reading a shared object copy it?
#
# A worker process (callr::r_session) receives a shared double vector, a
# second shared vector with the same values, a shared data frame and a shared
# matrix (each MORI_BENCH_MB MB, default 200), then runs common read-only
# calls on them. For each call we read the worker's private memory
# (`Anonymous:` in /proc/self/smaps_rollup, read inside the worker after a full
# gc) before and after the call, and subtract the size of the call's result
# (object.size(); 0 for a result that is itself a shared view, flagged in the
# "shared obj/result" column, which for the "receive" rows tells whether the
# worker got a shared object).
# Reading a shared object in place should leave "growth - result" at a few
# pages (< 1 MB). The same is then done with plain copies sent by
# serialization, where receiving the data alone costs its full size in private
# memory.
#
# The worker runs with a fixed glibc mmap threshold (see worker_malloc_env()
# in common.R) so that freed buffers over 64 KB go back to the system at once
# and the Anonymous figure measures what is alive, not what malloc keeps.
#
# sum(x) is answered by mori from metadata stored at share() time, so the
# first full read of each object is mean() / colMeans(), listed on its own
# ("1st"): in the
# shared run it includes the page faults that map the shared pages into the
# worker; later calls read pages already mapped.
#
# Temporaries freed before the call returns (e.g. the internal copy median()
# sorts, or the matrix colMeans(<data.frame>) builds) are not counted: the
# measure is what stays private after gc.
#
# Usage: Rscript bench/no-copy-on-read.R   (MORI_BENCH_MB=50 for a quick run)

source(file.path(dirname(sub("^--file=", "", grep("^--file=", c(commandArgs(FALSE), "--file=bench/."), value = TRUE)[1L])), "common.R"))
bench_start("no-copy-on-read: private memory growth of read-only calls in a worker")

mb <- bench_mb(200)
n <- as.integer(round(mb * 1e6 / 8))
cat(sprintf("# data: %.0f MB double vector (n = %d), same-size data frame (5 cols) and matrix\n", mb, n))

set.seed(42)
x <- rnorm(n)
y <- x + 0                      # same values, separate memory
df <- make_df(mb, 5L, seed = 2L)
m <- matrix(rnorm(n), ncol = 5L)
colnames(m) <- paste0("m", 1:5)

# The calls, evaluated in the worker where x, y, df, m are bound. `i`, `a`,
# `b` are chosen from the length there.
calls <- list(
  "x[1]"                = quote(x[1]),
  "x[[i]]"              = quote(x[[i]]),
  "x[a:b] (1e6 elts)"   = quote(x[a:b]),
  "head(x)"             = quote(head(x)),
  "mean(x) 1st full read" = quote(mean(x)),
  "vapply(df, mean) 1st" = quote(vapply(df, mean, 0)),
  "colMeans(m) 1st"     = quote(colMeans(m)),
  "identical(x, y)"     = quote(identical(x, y)),
  "as.list(x[1:1000])"  = quote(as.list(x[1:1000])),
  "mean(x) again"       = quote(mean(x)),
  "sum(x)"              = quote(sum(x)),
  "var(x)"              = quote(var(x)),
  "sd(x)"               = quote(sd(x)),
  "median(x)"           = quote(median(x)),
  "sort(x)"             = quote(sort(x)),
  "order(x)"            = quote(order(x)),
  "crossprod(m)"        = quote(crossprod(m)),
  "m %*% beta"          = quote(m %*% c(1, 2, 3, 4, 5)),
  "colMeans(m)"         = quote(colMeans(m)),
  "colMeans(df)"        = quote(colMeans(df)),
  "vapply(df, sum)"     = quote(vapply(df, sum, 0)),
  "lm.fit(m, df$x1)"    = quote(lm.fit(m, df$x1))
)

# ---------------------------------------------------------------------------
# Worker side (base R only; helper functions are installed in the worker's
# global environment first)

worker_init <- function(fns) {
  for (nm in names(fns)) assign(nm, fns[[nm]], envir = .GlobalEnv)
  invisible(gc(full = TRUE))
  .GlobalEnv$.last_private <- private_mb("self")
  Sys.getpid()
}

# The argument is already unserialized when this runs, so "before" is the
# figure left by the previous call.
worker_receive <- function(name, obj) {
  before <- .GlobalEnv$.last_private
  assign(name, obj, envir = .GlobalEnv)
  rm(obj)
  invisible(gc(full = TRUE))
  after <- private_mb("self")
  .GlobalEnv$.last_private <- after
  data.frame(call = paste("receive", name), growth_mb = after - before,
             result_mb = 0, seconds = NA_real_,
             shared = isTRUE(mori::is_shared(get(name, envir = .GlobalEnv))) ||
               (is.list(get(name, envir = .GlobalEnv)) &&
                  isTRUE(mori::is_shared(get(name, envir = .GlobalEnv)[[1]]))))
}

worker_calls <- function(calls) {
  env <- .GlobalEnv
  env$i <- length(env$x) %/% 2L
  env$a <- 1000001L
  env$b <- 2000000L
  out <- vector("list", length(calls))
  for (k in seq_along(calls)) {
    invisible(gc(full = TRUE))
    before <- private_mb("self")
    t0 <- proc.time()[["elapsed"]]
    res <- eval(calls[[k]], env)
    secs <- proc.time()[["elapsed"]] - t0
    invisible(gc(full = TRUE))
    after <- private_mb("self")
    # A result that is itself a shared view (e.g. a contiguous subset) holds
    # no private memory: count it as 0 MB and flag it.
    view <- isTRUE(mori::is_shared(res))
    out[[k]] <- data.frame(call = names(calls)[k], growth_mb = after - before,
                           result_mb = if (view) 0 else as.numeric(utils::object.size(res)) / 2^20,
                           seconds = secs, shared = view)
    rm(res)
  }
  invisible(gc(full = TRUE))
  .GlobalEnv$.last_private <- private_mb("self")
  do.call(rbind, out)
}

helpers <- list(smaps_rollup_kb = smaps_rollup_kb, private_mb = private_mb)

run_mode <- function(mode, objs) {
  rs <- callr::r_session$new(
    callr::r_session_options(env = worker_malloc_env()), wait = TRUE)
  on.exit(rs$close(), add = TRUE)
  rs$run(worker_init, list(fns = helpers))
  rec <- lapply(names(objs), function(nm)
    rs$run(worker_receive, list(name = nm, obj = objs[[nm]])))
  res <- rs$run(worker_calls, list(calls = calls))
  out <- rbind(do.call(rbind, rec), res)
  out$mode <- mode
  out
}

cat("# plain run (data serialized into the worker) ...\n")
plain <- run_mode("plain", list(x = x, y = y, df = df, m = m))

cat("# shared run (share() in this process, references sent to the worker) ...\n")
t_share <- elapsed({
  sx <- share(x); sy <- share(y); sdf <- share(df); sm <- share(m)
})
cat(sprintf("# share() of the four objects took %.2f s\n", t_share))
shared <- run_mode("shared", list(x = sx, y = sy, df = sdf, m = sm))

res <- rbind(shared, plain)
res$growth_minus_result_mb <- res$growth_mb - res$result_mb
res <- res[, c("mode", "call", "growth_mb", "result_mb", "growth_minus_result_mb",
               "seconds", "shared")]

show <- function(d, title) {
  d2 <- d[, c("call", "growth_mb", "result_mb", "growth_minus_result_mb", "seconds", "shared")]
  names(d2) <- c("call", "private MB growth", "result MB", "growth - result", "seconds",
                 "shared obj/result")
  print_table(d2, title)
}
show(res[res$mode == "shared", ], "shared (mori) objects in the worker")
show(res[res$mode == "plain", ], "plain (serialized) objects in the worker")

# Side-by-side summary
cmp <- data.frame(
  call = shared$call,
  shared_extra_mb = shared$growth_mb - shared$result_mb,
  plain_extra_mb = plain$growth_mb[match(shared$call, plain$call)] -
    plain$result_mb[match(shared$call, plain$call)],
  shared_s = shared$seconds,
  plain_s = plain$seconds[match(shared$call, plain$call)]
)
cmp$time_ratio_shared_plain <- ratio(cmp$shared_s, cmp$plain_s)
print_table(cmp[, c("call", "shared_extra_mb", "plain_extra_mb", "time_ratio_shared_plain")],
            "summary: MB kept beyond the result (shared vs plain), time ratio")

bad <- shared[!startsWith(shared$call, "receive") &
                (shared$growth_mb - shared$result_mb) >= 1, "call"]
bad_recv <- shared[startsWith(shared$call, "receive") & shared$growth_mb >= 1, "call"]
cat("\n")
if (length(bad) || length(bad_recv)) {
  cat("calls whose private growth beyond the result is >= 1 MB on shared data:\n  ",
      paste(c(bad_recv, bad), collapse = ", "), "\n", sep = "")
} else {
  cat("every call on shared data kept < 1 MB of private memory beyond its result\n")
}
write_results(res, "no-copy-on-read")
