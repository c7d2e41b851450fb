# Strings, wide data frames and lists of small vectors.
#
# 1. share() vs serialize() in this process, and, in a worker
#    (callr::r_session), unserialize() of the plain bytes vs of the shared
#    reference ("open"), then the first full read of the object there, for:
#      - a character vector of 1e6 distinct strings,
#      - a data frame of 1000 double columns x 1e4 rows,
#      - a list of 1e5 small named double vectors.
#    Also the serialized sizes (plain vs shared reference) and, for the list,
#    the bytes of the shared region.
# 2. Element access on a 2e6-string character vector (values from a pool of
#    1000 strings): x == "a", match(x, tbl), x %in% tbl on the plain vector
#    and on the shared view, in the owner process and in a worker that
#    received it: the first call (on a shared view it makes the strings it
#    touches) and repeated calls (best of 5 batches of 5 calls, per call);
#    ratio shared / plain. Then x == "a" one call at a time (after gc()),
#    beside a minimal ALTREP class whose Elt is one load: the floor of R's
#    per-element dispatch, which any ALTREP character vector pays.
#
# Scale with MORI_BENCH_SCALE (default 1; e.g. 0.2 for a quick run) which
# multiplies every count. Times are medians of MORI_BENCH_REPS (default 3).
#
# Usage: Rscript bench/strings-and-frames.R

source(file.path(dirname(sub("^--file=", "", grep("^--file=", c(commandArgs(FALSE), "--file=bench/."), value = TRUE)[1L])), "common.R"))
bench_start("strings-and-frames: character vectors, wide data frames, lists of small vectors")

scale <- env_num("MORI_BENCH_SCALE", 1)
reps <- as.integer(env_num("MORI_BENCH_REPS", 3))
n_chr <- as.integer(1e6 * scale)
n_cols <- as.integer(1000 * scale)
n_rows <- 1e4L
n_list <- as.integer(1e5 * scale)
n_access <- as.integer(2e6 * scale)

set.seed(7)
objs <- list(
  "chr 1e6 strings" = sprintf("s%08d", sample.int(n_chr * 10L, n_chr)),
  "df 1000 cols x 1e4" = as.data.frame(setNames(
    lapply(seq_len(n_cols), function(i) rnorm(n_rows)), paste0("c", seq_len(n_cols)))),
  "list 1e5 named vecs" = lapply(seq_len(n_list), function(i) c(a = i, b = i / 2, c = -i))
)
if (scale != 1) names(objs) <- paste0(names(objs), " (x", scale, ")")
cat(sprintf("# scale %g, reps %d\n", scale, reps))

full_read <- function(o) {
  if (is.character(o)) sum(nchar(o))
  else if (is.data.frame(o)) sum(vapply(o, mean, 0))  # sum() of a shared vector reads no data
  else sum(vapply(o, function(v) v[[2]], 0))
}

rs <- callr::r_session$new(wait = TRUE)
invisible(rs$run(function() { library(mori); NULL }))

# In the worker: unserialize the given bytes `reps` times (timing each), then
# read the last result fully once.
worker_open <- function(bytes, reps, full_read) {
  t <- numeric(reps)
  for (r in seq_len(reps)) {
    invisible(gc())
    t0 <- proc.time()[["elapsed"]]
    o <- unserialize(bytes)
    t[r] <- proc.time()[["elapsed"]] - t0
    if (r < reps) rm(o)
  }
  t0 <- proc.time()[["elapsed"]]
  full_read(o)
  t_read <- proc.time()[["elapsed"]] - t0
  t0 <- proc.time()[["elapsed"]]
  full_read(o)
  t_read2 <- proc.time()[["elapsed"]] - t0
  c(open_s = stats::median(t), first_read_s = t_read, second_read_s = t_read2)
}

rows <- list()
for (nm in names(objs)) {
  cat("# ", nm, " ...\n", sep = "")
  o <- objs[[nm]]
  t_ser <- time_reps(function() serialize(o, NULL), reps)
  plain_bytes <- serialize(o, NULL)
  t_share <- numeric(reps)
  for (r in seq_len(reps)) {
    invisible(gc())
    t_share[r] <- elapsed(s <- share(o))
    if (r < reps) rm(s)
  }
  invisible(gc())
  ref_bytes <- serialize(s, NULL)
  regions <- shared_regions()
  nm_s <- shared_name(s)
  if (is.null(nm_s) && is.list(s) && length(s)) nm_s <- shared_name(s[[1]])
  region_bytes <- if (is.null(nm_s)) NA_real_ else
    sum(regions$bytes[regions$name == sub("[\\[#].*$", "", nm_s)])
  wp <- rs$run(worker_open, list(bytes = plain_bytes, reps = reps, full_read = full_read))
  ws <- rs$run(worker_open, list(bytes = ref_bytes, reps = reps, full_read = full_read))
  rows[[nm]] <- data.frame(
    object = nm, object_mb = mb_of(o),
    serialize_s = stats::median(t_ser), share_s = stats::median(t_share),
    plain_bytes = length(plain_bytes), shared_ref_bytes = length(ref_bytes),
    region_bytes = region_bytes,
    unserialize_plain_s = wp[["open_s"]], open_shared_s = ws[["open_s"]],
    first_read_plain_s = wp[["first_read_s"]], first_read_shared_s = ws[["first_read_s"]],
    second_read_plain_s = wp[["second_read_s"]], second_read_shared_s = ws[["second_read_s"]])
  rm(s, ref_bytes, plain_bytes)
  invisible(rs$run(function() { invisible(gc()); NULL }))
}
tab1 <- do.call(rbind, rows)
tab1$share_over_serialize <- tab1$share_s / tab1$serialize_s
tab1$open_over_unserialize <- tab1$open_shared_s / tab1$unserialize_plain_s
tab1$ref_over_plain_bytes <- tab1$shared_ref_bytes / tab1$plain_bytes
tab1$region_over_plain_bytes <- tab1$region_bytes / tab1$plain_bytes

print_table(tab1[, c("object", "object_mb", "serialize_s", "share_s", "share_over_serialize",
                     "unserialize_plain_s", "open_shared_s", "open_over_unserialize")],
            "1a. this process: serialize vs share; worker: unserialize plain vs open shared (s)")
print_table(tab1[, c("object", "first_read_plain_s", "first_read_shared_s",
                     "second_read_plain_s", "second_read_shared_s")],
            "1b. worker: full read after opening (s)")
print_table(tab1[, c("object", "plain_bytes", "shared_ref_bytes", "ref_over_plain_bytes",
                     "region_bytes", "region_over_plain_bytes")],
            "1c. sizes: serialized plain vs serialized shared reference vs shared region (bytes)")

# ---------------------------------------------------------------------------
# 2. Element access on a 2e6-string vector

pool <- c("a", sprintf("v%04d", 1:999))
xa <- sample(pool, n_access, replace = TRUE)
tbl <- pool[seq(1, 1000, by = 10)]
ops <- list(
  'x == "a"' = function(x, tbl) sum(x == "a"),
  "match(x, tbl)" = function(x, tbl) sum(match(x, tbl), na.rm = TRUE),
  "x %in% tbl" = function(x, tbl) sum(x %in% tbl)
)
time_ops <- function(x, tbl, ops) {
  out <- NULL
  for (op in names(ops)) {
    f <- ops[[op]]
    t0 <- proc.time()[["elapsed"]]
    v <- f(x, tbl)
    first <- proc.time()[["elapsed"]] - t0
    repeated <- min(vapply(1:5, function(b) {
      t0 <- proc.time()[["elapsed"]]
      for (k in 1:5) f(x, tbl)
      (proc.time()[["elapsed"]] - t0) / 5
    }, 0))
    out <- rbind(out, data.frame(op = op, call = c("first", "repeated"), seconds = c(first, repeated), value = v))
  }
  out
}
cat("# element access ...\n")
sxa <- share(xa)
owner_plain <- time_ops(xa, tbl, ops)
owner_shared <- time_ops(sxa, tbl, ops)
worker_plain <- rs$run(function(x, tbl, ops, f) f(x, tbl, ops), list(xa, tbl, ops, time_ops))
worker_shared <- rs$run(function(x, tbl, ops, f) f(x, tbl, ops), list(sxa, tbl, ops, time_ops))

# 2b. x == "a" one call at a time, each after gc() so that no collection
# falls inside the timed call (the batches above include collections, as a
# loop would), beside the floor of any ALTREP character vector: a minimal
# class whose Elt is one load (common.R). Times in seconds from Sys.time().
single_eq <- function(x, s, floor_so, n = 21L) {
  one <- function(y) {
    invisible(y == "a")  # makes a shared view's strings; not timed
    t <- vapply(seq_len(n), function(i) {
      invisible(gc(FALSE))
      t0 <- Sys.time()
      y == "a"
      as.numeric(Sys.time()) - as.numeric(t0)
    }, 0)
    c(median = stats::median(t), min = min(t))
  }
  fl <- NULL
  if (!is.null(floor_so)) {
    dyn.load(floor_so)
    fl <- .Call("floor_view", x, PACKAGE = "altrep_floor")
    stopifnot(identical(fl == "a", x == "a"), identical(s == "a", x == "a"))
  }
  rbind(plain = one(x), shared = one(s), floor = if (is.null(fl)) c(NA, NA) else one(fl))
}
floor_so <- compile_altrep_floor()
eq_owner <- single_eq(xa, sxa, floor_so)
eq_worker <- rs$run(function(x, s, so, f) f(x, s, so), list(xa, sxa, floor_so, single_eq))
rs$close()
stopifnot(identical(owner_plain$value, owner_shared$value),
          identical(worker_plain$value, worker_shared$value))
tab2 <- data.frame(op = owner_plain$op, call = owner_plain$call,
                   owner_plain_s = owner_plain$seconds, owner_shared_s = owner_shared$seconds,
                   worker_plain_s = worker_plain$seconds, worker_shared_s = worker_shared$seconds)
tab2$owner_ratio <- ratio(tab2$owner_shared_s, tab2$owner_plain_s)
tab2$worker_ratio <- ratio(tab2$worker_shared_s, tab2$worker_plain_s)
print_table(tab2, sprintf("2. element access on %d strings (s); ratio = shared / plain", n_access))
tab2b <- do.call(rbind, lapply(c("owner", "worker"), function(where) {
  m <- if (where == "owner") eq_owner else eq_worker
  data.frame(where = where, stat = colnames(m), plain_s = m["plain", ], shared_s = m["shared", ],
             floor_s = m["floor", ], row.names = NULL)
}))
tab2b$shared_over_plain <- ratio(tab2b$shared_s, tab2b$plain_s)
tab2b$floor_over_plain <- ratio(tab2b$floor_s, tab2b$plain_s)
tab2b$shared_over_floor <- ratio(tab2b$shared_s, tab2b$floor_s)
print_table(tab2b, paste0("2b. x == \"a\", single calls after gc() (s): plain, shared, and the floor ",
                          "of any ALTREP character vector (Elt = one load)"))

write_results(tab1, "strings-and-frames-open")
write_results(tab2, "strings-and-frames-access")
write_results(tab2b, "strings-and-frames-eq-floor")
