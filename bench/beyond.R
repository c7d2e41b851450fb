# Before/after figures for what mori adds beyond mori 0.2.2's design, in one
# run: "before" is the same operation on a plain R vector (or with the
# feature switched off), "after" on a shared one. Writes
# bench/results/beyond.csv.
#   Rscript bench/beyond.R        (MORI_BENCH_N = 1e7 elements by default)
library(mori)
n <- as.numeric(Sys.getenv("MORI_BENCH_N", "1e7"))
reps <- as.integer(Sys.getenv("MORI_BENCH_REPS", "20"))
set.seed(1)
x <- rnorm(n)
s <- share(x)
sorted <- share(sort(x))
plain_sorted <- sort(x)

time_of <- function(expr, reps) {
  e <- substitute(expr)
  f <- parent.frame()
  median(replicate(reps, system.time(eval(e, f))[["elapsed"]]))
}
private_mb <- function() {
  l <- grep("^Anonymous:", readLines("/proc/self/smaps_rollup"), value = TRUE)
  as.numeric(sub("^\\S+\\s+(\\d+).*$", "\\1", l)) / 1024
}
row <- function(item, what, before, after, unit) {
  data.frame(item = item, measure = what, unit = unit, before = before, after = after,
             ratio = before / pmax(after, 1e-4))
}

rows <- list(
  row("1 O(1) summaries", "sum(x), 1e7 doubles", time_of(sum(x), reps), time_of(sum(s), reps), "s"),
  row("1 O(1) summaries", "range(x)", time_of(range(x), reps), time_of(range(s), reps), "s"),
  row("1 O(1) summaries", "anyNA(x)", time_of(anyNA(x), reps), time_of(anyNA(s), reps), "s"),
  row("1 O(1) summaries", "is.unsorted(x) of a sorted vector", time_of(is.unsorted(plain_sorted), reps),
      time_of(is.unsorted(sorted), reps), "s"),
  row("1 O(1) summaries", "sort(x) of a sorted vector", time_of(sort(plain_sorted), 5), time_of(sort(sorted), 5), "s")
)
stopifnot(identical(sum(s), sum(x)), identical(range(s), range(x)))

gc()
m0 <- private_mb()
slice_plain <- x[1:(n / 2)]
m1 <- private_mb()
slice_shared <- s[1:(n / 2)]
m2 <- private_mb()
rows <- c(rows, list(
  row("2 zero-copy slices", "x[1:(n/2)] time", time_of(x[1:(n / 2)], 5), time_of(s[1:(n / 2)], 5), "s"),
  row("2 zero-copy slices", "x[1:(n/2)] private memory", m1 - m0, max(m2 - m1, 0), "MB"),
  row("2 zero-copy slices", "serialize(x[1:(n/2)]) size", length(serialize(slice_plain, NULL)),
      length(serialize(slice_shared, NULL)), "bytes")
))

published <- share(x[1:1e6], name = paste0("bench_beyond_", Sys.getpid()))
pname <- paste0("bench_beyond_", Sys.getpid())
open_plain <- time_of(unserialize(serialize(x[1:1e6], NULL)), 5)
open_named <- time_of(map_shared(pname), 5)
unshare(pname)
rows <- c(rows, list(row("6 published regions", "open 1e6 doubles by name vs unserialize a copy", open_plain, open_named, "s")))

out <- do.call(rbind, rows)
out$before <- signif(out$before, 3)
out$after <- signif(out$after, 3)
out$ratio <- signif(out$ratio, 3)
print(out, row.names = FALSE)
dir.create("bench/results", showWarnings = FALSE, recursive = TRUE)
write.csv(out, "bench/results/beyond.csv", row.names = FALSE)
