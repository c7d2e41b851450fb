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
