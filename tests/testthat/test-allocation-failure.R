# Running out of memory ends in clean R errors: a process whose address
# space is capped (prlimit --as, as `ulimit -v` does) shares, maps and
# reads until memory runs out, and every failure is an R error (mori's
# of class mori_error_no_space, or R's own "cannot allocate"), never an
# abort of the process (Rust's allocator aborts on a failed allocation
# unless it is asked with try_reserve) and never a wrong "too many memory
# mappings" (mmap says ENOMEM for both); no descriptor or mapping is left
# behind, and the session shares again once the limit is lifted.

test_that("memory running out gives clean errors and leaves nothing behind", {
  skip_on_cran()
  skip_if(Sys.which("prlimit") == "", "no prlimit")
  skip_if(mem_available_gb() < 1.5, "needs 1.5 GB of free memory")
  owner <- share(as.double(seq_len(3e7))) # 240 MB for the child to map
  out <- rscript_child(c(
    "library(mori)",
    "fds <- function() sum(grepl('memfd:mori|/dev/shm/mori', suppressWarnings(Sys.readlink(list.files('/proc/self/fd', full.names = TRUE)))))",
    "maps <- function() sum(grepl('memfd:mori|/dev/shm/mori', readLines('/proc/self/maps')))",
    "vm <- as.numeric(gsub('[^0-9]', '', grep('^VmSize:', readLines('/proc/self/status'), value = TRUE))) * 1024",
    "invisible(system(sprintf('prlimit --pid %d --as=%.0f:', Sys.getpid(), vm + 200 * 2^20)))",
    "cases <- list(",
    "  map = function() sum(map_shared(commandArgs(TRUE)[1])),",
    "  doubles = function() sum(share(as.double(seq_len(1.5e7)))),",
    "  list = function() length(share(as.list(seq_len(2e6)))),",
    "  strings = function() length(share(as.character(seq_len(1.5e6)))),",
    "  records = function() length(share(replicate(2e5, list(a = 1, b = 'x'), simplify = FALSE))),",
    "  frame = function() nrow(share(data.frame(a = seq_len(2e6), b = as.character(seq_len(2e6)))))",
    ")",
    "for (nm in names(cases)) {",
    "  res <- tryCatch({ cases[[nm]](); 'ok' },",
    "    mori_error = function(e) class(e)[1],",
    "    error = function(e) if (grepl('allocate|memory exhausted', conditionMessage(e))) 'r_memory' else paste('other:', conditionMessage(e)))",
    "  invisible(gc())",
    "  cat('case', nm, res, '\\n')",
    "}",
    "cat('left', fds(), maps(), '\\n')",
    "invisible(system(sprintf('prlimit --pid %d --as=unlimited:', Sys.getpid())))",
    "cat('after', identical(share(as.double(1:1e6))[1e6], 1e6), '\\n')"
  ), args = shared_name(owner))
  cases <- grep("^case ", out, value = TRUE)
  expect_length(cases, 6)
  results <- vapply(strsplit(trimws(cases), " "), `[`, "", 3)
  names(results) <- vapply(strsplit(trimws(cases), " "), `[`, "", 2)
  expect_true(all(results %in% c("ok", "mori_error_no_space", "r_memory")), label = paste(cases, collapse = "; "))
  # The limit was low enough for mori itself to run out, in the reader's
  # mapping and in the planner's tables at least.
  expect_identical(results[["map"]], "mori_error_no_space")
  expect_identical(results[["list"]], "mori_error_no_space")
  expect_identical(trimws(grep("^left ", out, value = TRUE)), "left 0 0")
  expect_identical(trimws(grep("^after ", out, value = TRUE)), "after TRUE")
})

# Any allocation of mori's Rust code may be the one that fails, not only
# the large ones (which ask with try_reserve): Rust's handler for a failed
# String, Box or Vec aborts the process. mori's global allocator serves such
# a request from its reserve and the call ends in mori_error_no_space. The
# child fails, in turn, the 1st, 2nd, ... allocation of each operation
# (until the operation makes no more), once alone and once with every
# allocation after it failing too (memory gone for good).
test_that("any failed Rust allocation is a clean no_space error, never an abort", {
  skip_on_cran()
  skip_without_memfd()
  out <- rscript_child(c(
    "library(mori)",
    "fds <- function() sum(grepl('memfd:mori|/dev/shm/mori', suppressWarnings(Sys.readlink(list.files('/proc/self/fd', full.names = TRUE)))))",
    "frame <- data.frame(a = seq_len(5e4), b = as.character(seq_len(5e4)))",
    "owner <- share(list(frame = frame, big = as.double(1:1e5), l = as.list(1:100)))",
    "name <- shared_name(owner)",
    "s <- serialize(owner, NULL)",
    "cases <- list(",
    "  share = function() share(list(frame = frame, x = as.list(1:50), f = function(x) x)),",
    "  map = function() map_shared(name),",
    "  unserialize = function() unserialize(s),",
    "  materialize = function() materialize(owner),",
    "  elements = function() { x <- map_shared(name); c(x$frame$b[[77]], x$big[[5]], x$l[[3]]) }",
    ")",
    "for (count in c(1, 1e6)) for (nm in names(cases)) {",
    "  seen <- character(); n <- 0",
    "  repeat {",
    "    mori:::test_fail_allocations(n, count)",
    "    res <- tryCatch({ cases[[nm]](); 'ok' }, mori_error = function(e) class(e)[1],",
    "      error = function(e) paste('other:', conditionMessage(e)))",
    "    if (mori:::test_fail_allocations(0, 0) == count) break",
    "    seen <- union(seen, res)",
    "    n <- n + 1",
    "  }",
    "  invisible(gc())",
    "  cat('case', nm, count, n, paste(sort(seen), collapse = ','), '\\n')",
    "}",
    "rm(owner, s); invisible(gc()); invisible(gc())",
    "cat('left', fds(), '\\n')",
    "cat('after', identical(share(frame), frame), '\\n')"
  ))
  cases <- grep("^case ", out, value = TRUE)
  expect_length(cases, 10)
  fields <- strsplit(trimws(cases), " ")
  # Each operation allocates, and each failure ends in mori's no_space error
  # (the operation may also succeed: a failure inside R's own code that
  # mori catches and retries, or after the work is done), nothing else.
  made <- as.numeric(vapply(fields, `[`, "", 4))
  expect_true(all(made > 0), label = paste(cases, collapse = "; "))
  seen <- vapply(fields, `[`, "", 5)
  expect_true(all(seen %in% c("mori_error_no_space", "mori_error_no_space,ok")), label = paste(cases, collapse = "; "))
  expect_identical(trimws(grep("^left ", out, value = TRUE)), "left 0")
  expect_identical(trimws(grep("^after ", out, value = TRUE)), "after TRUE")
})
