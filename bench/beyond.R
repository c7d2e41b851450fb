# Before/after figures for each thing mori does beyond mori 0.2.2's design,
# measured in one run. "before" is the same operation on a plain R object, or
# done the way mori 0.2.2 does it (per-page faults, a file in /dev/shm); "after"
# is mori. ratio = before / after: above 1, mori is ahead.
# Writes bench/results/beyond.csv.
#   Rscript bench/beyond.R   (MORI_BENCH_N = 1e7 elements, MORI_BENCH_MB = 200)

source(file.path(dirname(sub("^--file=", "", grep("^--file=", c(commandArgs(FALSE), "--file=bench/."), value = TRUE)[1L])), "common.R"))
bench_start("beyond: one before/after table per item of mori's extras")

n <- env_num("MORI_BENCH_N", 1e7)
mb <- bench_mb(200)
set.seed(1)
x <- rnorm(n)
s <- share(x)
plain_sorted <- sort(x)
sorted <- share(plain_sorted)

row <- function(item, what, before, after, unit) {
  data.frame(item = item, measure = what, unit = unit, before = before, after = after,
             ratio = ifelse(after > 0, before / after, Inf))
}
rows <- list()
add <- function(...) rows[[length(rows) + 1L]] <<- row(...)

# 1. O(1) summaries (the results must be identical to plain R's). Timed on
# views no C code has asked a writable pointer of; the last row after one
# has (c() does): the view then checks the kernel's page map for written
# pages before it trusts its summaries.
stopifnot(identical(sum(s), sum(x)), identical(min(s), min(x)), identical(max(s), max(x)),
          identical(anyNA(s), anyNA(x)), identical(is.unsorted(sorted), FALSE),
          identical(sort(sorted), plain_sorted))
for (op in list(list("sum(x)", sum), list("min(x)", min), list("max(x)", max), list("anyNA(x)", anyNA))) {
  add("1 O(1) summaries", sprintf("%s, %g doubles", op[[1]], n), per_call(function() op[[2]](x)),
      per_call(function() op[[2]](s)), "s")
}
add("1 O(1) summaries", "is.unsorted(x), sorted", per_call(function() is.unsorted(plain_sorted)),
    per_call(function() is.unsorted(sorted)), "s")
add("1 O(1) summaries", "sort(x), already sorted", per_call(function() sort(plain_sorted)),
    per_call(function() sort(sorted)), "s")
stopifnot(identical(range(s), range(x)))
add("1 O(1) summaries", "range(x) (range.default copies with c(): not O(1))",
    per_call(function() range(x)), per_call(function() range(s)), "s")
add("1 O(1) summaries", "sum(x) after C code took a writable pointer (page-map check)",
    per_call(function() sum(x)), per_call(function() sum(s)), "s")

# 2. Zero-copy slices
half <- seq_len(n / 2)
invisible(gc())
m0 <- private_mb()
slice_plain <- x[half]
m1 <- private_mb()
slice_shared <- s[half]
m2 <- private_mb()
stopifnot(identical(slice_shared, slice_plain), is_shared(slice_shared))
add("2 zero-copy slices", "x[1:(n/2)] time", per_call(function() x[half]), per_call(function() s[half]), "s")
add("2 zero-copy slices", "x[1:(n/2)] private memory", m1 - m0, max(m2 - m1, 0), "MB")
add("2 zero-copy slices", "serialize(x[1:(n/2)]) size", length(serialize(slice_plain, NULL)),
    length(serialize(slice_shared, NULL)), "bytes")
rm(slice_plain, slice_shared)

# 3. Fast first touch: a fresh worker's first full scan of a 200 MB column
big <- share(rnorm(mb * 2^20 / 8))
ref <- serialize(big, NULL)
first_scan <- function(populate) {
  callr::r(function(ref, populate) {
    options(mori.populate = populate)
    y <- unserialize(ref)
    system.time(mean(y))[["elapsed"]]
  }, args = list(ref = ref, populate = populate), libpath = .libPaths())
}
scans <- replicate(5, c(per_page = first_scan(FALSE), populate = first_scan(TRUE)))
add("3 fast first touch", sprintf("first mean() of %g MB in a fresh worker", mb),
    median(scans["per_page", ]), median(scans["populate", ]), "s")

# 4. share() at the memory floor (C: memfd + fallocate + pwrite, the cheapest
# way found to fill a reserved memory file, and how share() writes; same run)
floor_exe <- compile_floor()
payload <- 8 * length(big)
plain_big <- materialize(big)
share_times <- floor_s <- numeric(3)
for (r in 1:3) {
  invisible(gc())
  share_times[r] <- elapsed(tmp <- share(plain_big))
  rm(tmp)
  invisible(gc())
  floor_s[r] <- floor_times(payload, 1L, 3L, floor_exe)
}
add("4 share() at the floor", sprintf("share() of %g MB vs the C floor (ratio: floor / share)", mb),
    median(floor_s), median(share_times), "s")
add("4 share() at the floor", sprintf("serialize() of %g MB vs share()", mb),
    per_call(function() serialize(plain_big, NULL), 0), median(share_times), "s")
rm(plain_big)

# 5. Nothing to clean up after a crash: an owner killed with SIGKILL while
# holding 50 MB. Before: a POSIX shared-memory file (mori 0.2.2's kind of
# region), written by the same R code path; after: share().
shmem_kb <- function() {
  l <- grep("^Shmem:", readLines("/proc/meminfo"), value = TRUE)
  as.numeric(sub("^Shmem:\\s+(\\d+).*$", "\\1", l))
}
killed_owner_leftover <- function(posix_file) {
  before <- shmem_kb()
  p <- callr::r_bg(function(path) {
    v <- rnorm(50 * 2^20 / 8)
    if (nzchar(path)) writeBin(v, path) else x <- mori::share(v)
    cat("ready\n")
    Sys.sleep(60)
  }, args = list(path = posix_file), libpath = .libPaths(), stdout = "|")
  while (!any(grepl("ready", p$read_output_lines()))) Sys.sleep(0.1)
  p$kill()
  Sys.sleep(0.5)
  left <- (shmem_kb() - before) / 1024
  files <- if (nzchar(posix_file)) file.exists(posix_file) else FALSE
  if (nzchar(posix_file)) unlink(posix_file)
  c(mb = max(left, 0), files = files)
}
posix <- killed_owner_leftover(sprintf("/dev/shm/bench_posix_%d", Sys.getpid()))
ours <- killed_owner_leftover("")
add("5 nothing to clean up", "shared memory left after the owner is killed", posix[["mb"]], ours[["mb"]], "MB")
add("5 nothing to clean up", "files left in /dev/shm after the owner is killed", posix[["files"]],
    ours[["files"]], "files")

# 6. Named regions for unrelated processes
pname <- paste0("bench_beyond_", Sys.getpid())
published <- share(x[1:1e6], name = pname)
plain_bytes <- serialize(x[1:1e6], NULL)
add("6 published regions", "open 1e6 doubles by name (vs unserialize a copy)",
    per_call(function() unserialize(plain_bytes)), per_call(function() map_shared(pname)), "s")
# Reading a published region costs what reading an ordinary one does,
# although its file (unlike a sealed memory file) could be truncated: the
# file is checked when a whole-vector pointer is handed out, at most once
# per clock tick, and per-element reads rely on the SIGBUS guard.
ordinary <- share(x[1:1e6])
add("6 published regions", "c(x, 1), 1e6 doubles: ordinary region vs published",
    per_call(function() c(ordinary, 1)), per_call(function() c(published, 1)), "s")
pchr <- paste0(pname, "_chr")
chr <- rep(c("a", sprintf("v%03d", 1:999)), length.out = 2e6)
chr_ordinary <- share(chr)
chr_published <- share(chr, name = pchr)
first_touch <- function(nm) per_call(function() {
  y <- map_shared(nm)
  y == "a"
}, 0.5)
add("6 published regions", "first x == \"a\" on 2e6 strings opened by name: ordinary vs published",
    first_touch(shared_name(chr_ordinary)), first_touch(pchr), "s")
rm(chr_ordinary, chr_published, ordinary)
unshare(pchr)
unshare(pname)

# 7. Memory you can see: two workers each reading the 200 MB column
workers_pss <- function(obj) {
  cl <- parallel::makePSOCKcluster(2)
  on.exit(parallel::stopCluster(cl))
  parallel::clusterCall(cl, function(lib) .libPaths(c(lib, .libPaths())), .libPaths()[1])
  parallel::clusterExport(cl, "obj", envir = environment())
  parallel::clusterEvalQ(cl, invisible(mean(obj)))
  pids <- unlist(parallel::clusterCall(cl, Sys.getpid))
  mu <- memory_usage(pids)
  c(pss = sum(mu$pss), private = sum(mu$private), shared_pss = sum(mu$shared_pss))
}
plain_mem <- workers_pss(materialize(big))
shared_mem <- workers_pss(big)
add("7 memory you can see", "2 workers reading the column: total PSS (memory_usage())",
    plain_mem[["pss"]], shared_mem[["pss"]], "MB")
add("7 memory you can see", "... of which private memory", plain_mem[["private"]], shared_mem[["private"]], "MB")

# 8. Diagnostics: describing a 1e6-string vector. Before: what R offers on
# its own (format() of the vector); after: shared_info(), which makes no string.
strs <- share(as.character(seq_len(1e6)))
add("8 diagnostics", "describe a 1e6-string vector: format(x) vs shared_info(x)",
    per_call(function() format(as.character(seq_len(1e6))), 0), per_call(function() shared_info(strs)), "s")
info <- shared_info(strs)
add("8 diagnostics", "strings made by shared_info()", 1e6, info$made, "strings")
add("8 diagnostics", "list this process's regions: shared_regions()", NA,
    per_call(function() shared_regions()), "s")

out <- do.call(rbind, rows)
print_table(out, "before / after (ratio = before / after)")
print(info)
write_results(out, "beyond")
