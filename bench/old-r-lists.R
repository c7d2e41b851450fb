# Shared lists against plain ones: serialized size and round-trip time.
#
# On R < 4.3 (no ALTLIST) a shared list is an ordinary list whose elements
# are views, and it serializes element by element. A view whose values take
# no more bytes than its reference serializes its values, so a shared
# list's payload is never larger than the plain list's (before, each element
# was a reference of ~170 bytes: 20,000 small data frames were 8.7 MB shared
# against 5.1 MB plain). On R >= 4.3 a shared list is one reference.
#
# For each case: bytes of serialize(plain) and of serialize(shared), and the
# time of serialize() + unserialize() of each (median of MORI_BENCH_REPS,
# default 5, runs of enough round trips to last ~0.1 s), in this process;
# ratio shared / plain.
#   - split() of a 1e5-row data frame (3 columns) into 20,000 frames of 5 rows
#   - a data frame with a list column of 1e4 single integers
#   - a list of 1e4 named length-3 double vectors
#   - a list of 100 double vectors of 1e4 elements (where sharing pays)
#
# Usage: Rscript bench/old-r-lists.R   (writes bench/results/old-r-lists-R<version>.csv)

source(file.path(dirname(sub("^--file=", "", grep("^--file=", c(commandArgs(FALSE), "--file=bench/."), value = TRUE)[1L])), "common.R"))
bench_start("old-r-lists: shared lists vs plain lists, serialized size and round trip")

reps <- as.integer(env_num("MORI_BENCH_REPS", 5))

set.seed(1)
frame <- data.frame(a = rnorm(1e5), b = sample.int(100L, 1e5, TRUE), g = sample(letters[1:5], 1e5, TRUE))
list_col <- data.frame(id = sample.int(1e6, 1e4))
list_col$l <- as.list(sample.int(1e6, 1e4))
cases <- list(
  "split(): 20,000 frames of 5 rows" = split(frame, rep(seq_len(2e4), each = 5)),
  "list column of 1e4 integers" = list_col,
  "1e4 named length-3 doubles" = lapply(seq_len(1e4), function(i) c(x = rnorm(1), y = rnorm(1), z = rnorm(1))),
  "100 doubles of 1e4 each" = lapply(seq_len(100), function(i) rnorm(1e4))
)

# One timed run makes `inner` round trips, so that each takes long enough
# to time (at least ~0.1 s for the plain object).
round_trip <- function(x, inner) function() for (i in seq_len(inner)) unserialize(serialize(x, NULL))
inner_for <- function(x) {
  once <- max(elapsed(unserialize(serialize(x, NULL))), 1e-4)
  as.integer(max(1, min(200, ceiling(0.1 / once))))
}

rows <- lapply(names(cases), function(what) {
  plain <- cases[[what]]
  shared <- share(plain)
  stopifnot(identical(unserialize(serialize(shared, NULL)), plain))
  inner <- inner_for(plain)
  t_plain <- stats::median(time_reps(round_trip(plain, inner), reps)) / inner
  t_shared <- stats::median(time_reps(round_trip(shared, inner), reps)) / inner
  b_plain <- length(serialize(plain, NULL))
  b_shared <- length(serialize(shared, NULL))
  data.frame(
    case = what, plain_bytes = b_plain, shared_bytes = b_shared, bytes_ratio = b_shared / b_plain,
    plain_s = t_plain, shared_s = t_shared, time_ratio = ratio(t_shared, t_plain),
    lists_altrep = getRversion() >= "4.3.0",
    stringsAsFactors = FALSE
  )
})
res <- do.call(rbind, rows)
print_table(res[c("case", "plain_bytes", "shared_bytes", "bytes_ratio", "plain_s", "shared_s", "time_ratio")],
            "serialize() size and serialize() + unserialize() time, shared / plain")
write_results(res, paste0("old-r-lists-R", bench_meta()$r_version))
