# First full scan of a shared column in a fresh worker: mori faults the whole
# range in with one call (MADV_POPULATE_READ) where a plain mapping takes one
# page fault per 4 KB page (mori 0.2.2's way; here options(mori.populate =
# FALSE)). Prints the times and their ratio; writes bench/results/first-scan.csv.
#   Rscript bench/first-scan.R            (MORI_BENCH_MB=200 by default)
source(file.path(dirname(sub("^--file=", "", grep("^--file=", c(commandArgs(FALSE), "--file=bench/."), value = TRUE)[1L])), "common.R"))
bench_start("first-scan: first full read of a shared column in a fresh worker")
mb <- bench_mb(200)
reps <- as.integer(env_num("MORI_BENCH_REPS", 5))
x <- share(rnorm(mb * 2^20 / 8))
ref <- serialize(x, NULL)

first_scan <- function(ref, populate) {
  callr::r(function(ref, populate) {
    library(mori)
    options(mori.populate = populate)
    y <- unserialize(ref)
    t <- system.time(m <- mean(y))[["elapsed"]]
    t2 <- system.time(mean(y))[["elapsed"]]
    c(first = t, second = t2)
  }, args = list(ref = ref, populate = populate), libpath = .libPaths())
}

runs <- lapply(seq_len(reps), function(i) rbind(populate = first_scan(ref, TRUE), per_page = first_scan(ref, FALSE)))
med <- function(row, col) median(vapply(runs, function(r) r[row, col], 0))
out <- data.frame(
  mode = c("one call (MADV_POPULATE_READ)", "one fault per page (mori-style)"),
  mb = mb,
  first_scan_s = c(med("populate", "first"), med("per_page", "first")),
  second_scan_s = c(med("populate", "second"), med("per_page", "second"))
)
print(out, row.names = FALSE)
cat(sprintf("\nfirst scan, per-page / populate: %.2fx (median of %d fresh workers each)\n",
            out$first_scan_s[2] / out$first_scan_s[1], reps))
write_results(out, "first-scan")
