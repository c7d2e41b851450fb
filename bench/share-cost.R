# What does share() cost?
#
# share() of a double vector and of a data frame (5 double columns) of
# MORI_BENCH_MB MB (default 200), against serialize(x, NULL) of the same
# object, and against the floor: creating fresh shared pages and copying the
# bytes into them with no R involved. The floor is measured in the same run
# by a small C program compiled on the fly with gcc: memfd_create + fallocate
# + mmap(MAP_SHARED) + memcpy from a malloc'd buffer that was touched
# beforehand (variants: with MAP_POPULATE, with ftruncate instead of
# fallocate, where memcpy's page faults allocate the pages, and with pwrite
# into the file instead of a mapping, which is how share() writes a plain
# vector's data on Linux).
#
# Each figure is the median of MORI_BENCH_REPS runs (default 5), interleaved;
# the shared object is dropped and garbage-collected between runs (not
# timed). The floor program gets its source buffer touched before timing, so
# it is a lower bound on moving the bytes; share() also walks the object,
# lays out the region and seals it.
#
# Usage: Rscript bench/share-cost.R   (MORI_BENCH_MB=1000 for a bigger run)

source(file.path(dirname(sub("^--file=", "", grep("^--file=", c(commandArgs(FALSE), "--file=bench/."), value = TRUE)[1L])), "common.R"))
bench_start("share-cost: share() vs serialize() vs a C floor (memfd + memcpy)")

mb <- bench_mb(200)
reps <- as.integer(env_num("MORI_BENCH_REPS", 5))
n <- as.integer(round(mb * 1e6 / 8))
set.seed(1)
x <- rnorm(n)
df <- make_df(mb, 5L, seed = 2L)
cat(sprintf("# vector: %d doubles (%.1f MB); data frame: %d x 5 (%.1f MB); %d reps\n",
            n, mb_of(x), nrow(df), mb_of(df), reps))

floor_exe <- compile_floor()

# ---------------------------------------------------------------------------
# R side

one_share <- function(obj) {
  invisible(gc())
  t <- elapsed(s <- share(obj))
  stopifnot(length(s) == length(obj))
  rm(s)
  invisible(gc())
  t
}
one_serialize <- function(obj) {
  invisible(gc())
  t <- elapsed(r <- serialize(obj, NULL))
  rm(r)
  invisible(gc())
  t
}

# The runs are interleaved (share, serialize, floors; then again) so that a
# change in the machine's load during the run weighs on all columns alike.
rows <- list()
for (what in c("double vector", "data frame")) {
  obj <- if (what == "double vector") x else df
  bytes <- as.numeric(utils::object.size(obj))
  payload <- if (what == "double vector") 8 * length(x) else 8 * nrow(df) * ncol(df)
  t <- matrix(NA_real_, reps, 6L,
              dimnames = list(NULL, c("share", "serialize", "floor", "floor_pop", "floor_trunc", "floor_pwrite")))
  for (r in seq_len(reps)) {
    t[r, "share"] <- one_share(obj)
    t[r, "serialize"] <- one_serialize(obj)
    t[r, "floor"] <- floor_times(payload, 1L, 0L, floor_exe)
    t[r, "floor_pop"] <- floor_times(payload, 1L, 1L, floor_exe)
    t[r, "floor_trunc"] <- floor_times(payload, 1L, 2L, floor_exe)
    t[r, "floor_pwrite"] <- floor_times(payload, 1L, 3L, floor_exe)
  }
  med <- apply(t, 2, stats::median)
  rows[[what]] <- data.frame(
    object = what, mb = bytes / 2^20,
    share_s = med[["share"]], serialize_s = med[["serialize"]],
    floor_s = med[["floor"]], floor_populate_s = med[["floor_pop"]],
    floor_ftruncate_s = med[["floor_trunc"]], floor_pwrite_s = med[["floor_pwrite"]],
    share_all = paste(sprintf("%.3f", t[, "share"]), collapse = " "),
    serialize_all = paste(sprintf("%.3f", t[, "serialize"]), collapse = " "),
    floor_all = paste(sprintf("%.3f", t[, "floor"]), collapse = " "))
}
res <- do.call(rbind, rows)
res$share_over_serialize <- res$share_s / res$serialize_s
res$share_over_floor <- res$share_s / res$floor_s
res$share_over_pwrite_floor <- res$share_s / res$floor_pwrite_s
res$share_GBps <- res$mb / 1024 / res$share_s
res$floor_GBps <- res$mb / 1024 / res$floor_s

print_table(res[, c("object", "mb", "share_s", "serialize_s", "floor_s",
                    "floor_populate_s", "floor_ftruncate_s", "floor_pwrite_s")],
            sprintf("seconds, median of %d runs", reps))
print_table(res[, c("object", "share_over_serialize", "share_over_floor", "share_over_pwrite_floor",
                    "share_GBps", "floor_GBps")], "ratios")
cat("floor = C: memfd_create + fallocate + mmap(MAP_SHARED) + memcpy from a touched buffer;",
    "pwrite floor: memfd_create + fallocate + pwrite\n")
write_results(res, "share-cost")
