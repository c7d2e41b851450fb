# Shares made inside finalizers are released: R drops the weak references
# (finalizers) registered while it runs a batch of finalizers, so the views
# made by share() or map_shared() in a finalizer would never unmap their
# regions (100 finalizers that each shared left 99 regions for the rest of
# the process). mori registers those views' finalizers again at the next
# safe point: the next top-level task callback, or the next share() or
# map_shared() made outside a finalizer. Covered: R finalizers
# (reg.finalizer), references unserialize()d in them, R code called by C
# finalizers (R_RegisterCFinalizerEx), and finalizers run at exit.

memfd_descriptors <- function() {
  links <- suppressWarnings(Sys.readlink(list.files("/proc/self/fd", full.names = TRUE)))
  sum(grepl("memfd:mori_", links))
}

test_that("100 finalizers that each share() leave no region behind (top-level gc)", {
  out <- rscript_child(c(
    "library(mori)",
    "fds <- function() sum(grepl('memfd:mori_', suppressWarnings(Sys.readlink(list.files('/proc/self/fd', full.names = TRUE)))))",
    "maps <- function() sum(grepl('memfd:mori_', readLines('/proc/self/maps')))",
    "invisible(gc())",
    "base <- c(fds(), maps(), nrow(shared_regions()))",
    "sums <- new.env()",
    "make <- function(i) {",
    "  force(i)",
    "  e <- new.env()",
    "  reg.finalizer(e, function(e) {",
    "    s <- share(as.double(seq_len(5000)) + i)",
    "    l <- share(list(a = i, b = letters))",
    "    assign(as.character(i), c(sum(s), l$a), envir = sums)",
    "  })",
    "  invisible(NULL)",
    "}",
    "for (i in 1:100) make(i)",
    "invisible(gc())",
    "invisible(gc())",
    "invisible(gc())",
    "ok <- all(vapply(1:100, function(i) identical(sums[[as.character(i)]], c(sum(as.double(1:5000) + i), i)), TRUE))",
    "cat(base, '|', fds(), maps(), nrow(shared_regions()), '|', length(ls(sums)), ok, '\\n')"
  ))
  fields <- strsplit(trimws(tail(out, 1)), " ")[[1]]
  expect_identical(fields[1:3], c("0", "0", "0"), label = "regions before")
  expect_identical(fields[5:7], c("0", "0", "0"), label = "descriptors, mappings, regions after the finalizers")
  expect_identical(fields[9:10], c("100", "TRUE"))
})

test_that("views made in finalizers are released at the next share() outside one", {
  full_gc()
  base_fds <- memfd_descriptors()
  base_regions <- nrow(shared_regions())
  owner <- share(as.double(1:3000))
  name <- shared_name(owner)
  seen <- new.env()
  for (i in 1:50) {
    local({
      j <- i
      e <- new.env()
      reg.finalizer(e, function(e) {
        s <- share(c(j, 1:2000))
        m <- map_shared(name)
        assign(as.character(j), c(s[1], sum(m)), envir = seen)
      })
    })
  }
  full_gc()
  expect_identical(length(ls(seen)), 50L)
  expect_true(all(vapply(1:50, function(i) identical(seen[[as.character(i)]], c(as.double(i), sum(as.double(1:3000)))), TRUE)))
  # Inside a test nothing runs at top level: the next share() is the safe point.
  invisible(share(1:3))
  expect_identical(mori:::deferred_count(), 0L)
  full_gc()
  rm(owner)
  full_gc()
  expect_identical(memfd_descriptors(), base_fds)
  expect_identical(nrow(shared_regions()), base_regions)
})

test_that("shares outside finalizers are not held back", {
  x <- share(1:10)
  y <- lapply(1:3, function(i) share(i + 0.5))
  z <- do.call(share, list(letters))
  w <- (function() share(1:5))()
  # do.call() of a closure on an environment or external pointer, from the
  # global environment, makes the call R makes for a finalizer.
  key_env <- new.env()
  key_ptr <- methods::new("externalptr")
  v <- do.call(function(e) share(as.double(1:3000)), list(key_env), envir = globalenv())
  expect_false(do.call(function(e) mori:::from_finalizer(), list(key_env), envir = globalenv()))
  expect_false(do.call(function(p) mori:::from_finalizer(), list(key_ptr), envir = globalenv()))
  expect_identical(mori:::deferred_count(), 0L)
  expect_false(mori:::from_finalizer())
  # Nor references read outside finalizers, at any depth.
  big <- share(as.double(1:5000))
  ref <- serialize(big, NULL)
  read_in <- function(depth) if (depth == 0) {
    r <- unserialize(ref)
    c(sum(r), mori:::deferred_count())
  } else read_in(depth - 1)
  expect_identical(read_in(0), c(sum(as.double(1:5000)), 0))
  expect_identical(read_in(5), c(sum(as.double(1:5000)), 0))
  expect_identical(lapply(1:2, function(i) unserialize(ref)[1:2]), list(c(1, 2), c(1, 2)))
  expect_identical(mori:::deferred_count(), 0L)
  seen <- new.env()
  local({
    e <- new.env()
    reg.finalizer(e, function(e) assign("inside", mori:::from_finalizer(), envir = seen))
  })
  full_gc()
  expect_true(seen$inside)
})

test_that("a finalizer is seen at any depth and through any calls it makes", {
  at_depth <- function(n, f) if (n == 0) f() else at_depth(n - 1, f)
  seen <- new.env()
  probe <- function(tag) assign(tag, mori:::from_finalizer(), envir = seen)
  finalize_with <- function(f) local({
    e <- new.env()
    reg.finalizer(e, function(e) f())
  })
  delayed <- new.env()
  delayedAssign("forced", probe("promise"), assign.env = delayed)
  finalize_with(function() probe("direct"))
  finalize_with(function() at_depth(200, function() probe("deep inside")))
  finalize_with(function() lapply(1, function(i) local(probe("lapply, local"))))
  finalize_with(function() {
    assign("eval in globalenv", eval(quote(mori:::from_finalizer()), globalenv()), envir = seen)
  })
  finalize_with(function() do.call(probe, list("do.call")))
  finalize_with(function() delayed$forced)
  # the collection that runs them starts 200 calls down
  at_depth(200, full_gc)
  tags <- c("direct", "deep inside", "lapply, local", "eval in globalenv", "do.call", "promise")
  expect_setequal(ls(seen), tags)
  for (tag in tags) expect_true(seen[[tag]], label = tag)
  # and what they share is held back for the next safe point, then released
  base <- nrow(shared_regions())
  kept <- new.env()
  finalize_with(function() at_depth(50, function() assign("v", sum(share(as.double(1:5000))), envir = kept)))
  at_depth(100, full_gc)
  expect_identical(kept$v, sum(as.double(1:5000)))
  expect_gt(mori:::deferred_count(), 0L)
  invisible(share(1:3))
  expect_identical(mori:::deferred_count(), 0L)
  full_gc()
  expect_identical(nrow(shared_regions()), base)
})

test_that("a function object called from the global environment outside a finalizer is not one", {
  at_depth <- function(n, f) if (n == 0) f() else at_depth(n - 1, f)
  # what rlang::exec() or C code calling an R function object does: the
  # call has the function itself in the function position
  direct <- function() eval(as.call(list(function() mori:::from_finalizer())), globalenv())
  expect_false(direct())
  expect_false(at_depth(200, direct))
  expect_false(at_depth(200, function() do.call(function() mori:::from_finalizer(), list(), envir = globalenv())))
  expect_false(at_depth(200, mori:::from_finalizer))
  v <- at_depth(50, function() eval(as.call(list(function(x) share(x), as.double(1:3000))), globalenv()))
  expect_identical(mori:::deferred_count(), 0L)
  expect_true(is_shared(v))
})

# Counting lines shared by the child scripts below: memfd descriptors,
# mappings and regions, after a full gc at top level (where the task
# callback has run).
finalizer_child_prelude <- c(
  "library(mori)",
  "fds <- function() sum(grepl('memfd:mori_', suppressWarnings(Sys.readlink(list.files('/proc/self/fd', full.names = TRUE)))))",
  "maps <- function() sum(grepl('memfd:mori_', readLines('/proc/self/maps')))",
  "counts <- function() c(fds(), maps(), nrow(shared_regions()))",
  "seen <- new.env()"
)

# Another process's regions, referred to by serialized references the child
# unserializes (so it maps them itself): one vector and one list.
foreign_references <- function() {
  x <- share(as.double(1:5000) * 3)
  l <- share(list(a = as.double(1:6000), b = letters))
  file <- tempfile(fileext = ".rds")
  saveRDS(list(x = serialize(x, NULL), l = serialize(l, NULL)), file)
  list(x = x, l = l, file = file, sum = sum(x) + sum(l$a))
}

test_that("references unserialized in finalizers are released (own and another process's regions)", {
  foreign <- foreign_references()
  on.exit(unlink(foreign$file))
  out <- rscript_child(c(
    finalizer_child_prelude,
    "foreign <- readRDS(commandArgs(TRUE)[1])",
    "invisible(gc())",
    "base <- counts()",
    "own <- share(as.double(1:5000))",
    "own_list <- share(list(a = as.double(1:7000), b = 1:3))",
    "refs <- list(serialize(own, NULL), serialize(own_list, NULL))",
    "for (i in 1:50) local({",
    "  j <- i",
    "  e <- new.env()",
    "  reg.finalizer(e, function(e) {",
    "    v <- unserialize(refs[[1]]); l <- unserialize(refs[[2]])",
    "    fv <- unserialize(foreign$x); fl <- unserialize(foreign$l)",
    "    assign(as.character(j), sum(v) + sum(l$a) + sum(fv) + sum(fl$a), envir = seen)",
    "  })",
    "})",
    "invisible(gc()); invisible(gc())",
    "rm(own, own_list, refs); invisible(gc()); invisible(gc()); invisible(gc())",
    "want <- sum(as.double(1:5000)) + sum(as.double(1:7000)) + as.numeric(commandArgs(TRUE)[2])",
    "ok <- all(vapply(ls(seen), function(k) isTRUE(all.equal(seen[[k]], want)), TRUE))",
    "cat(base, '|', counts(), '|', length(ls(seen)), ok, '\\n')"
  ), args = c(foreign$file, format(foreign$sum, digits = 17)))
  fields <- strsplit(trimws(tail(out, 1)), " ")[[1]]
  expect_identical(fields[5:7], fields[1:3], label = "descriptors, mappings, regions after the finalizers")
  expect_identical(fields[9:10], c("50", "TRUE"))
})

# A C finalizer (R_RegisterCFinalizerEx) that calls back into R: the R
# function kept in the pointer's protected field, called with no argument
# or with the pointer, as packages' C and C++ code does.
c_finalizer_source <- "
#include <R.h>
#include <Rinternals.h>
static void call_back(SEXP ptr) {
  SEXP fn = R_ExternalPtrProtected(ptr);
  SEXP call = PROTECT(R_ExternalPtrTag(ptr) == R_NilValue ? Rf_lang1(fn) : Rf_lang2(fn, ptr));
  int failed = 0;
  R_tryEvalSilent(call, R_GlobalEnv, &failed);
  UNPROTECT(1);
}
SEXP mori_test_c_finalized(SEXP fn, SEXP with_pointer) {
  SEXP ptr = PROTECT(R_MakeExternalPtr(NULL, Rf_asLogical(with_pointer) ? Rf_ScalarLogical(1) : R_NilValue, fn));
  R_RegisterCFinalizerEx(ptr, call_back, TRUE);
  UNPROTECT(1);
  return ptr;
}
"

test_that("views made by R code that C finalizers call are released", {
  skip_on_cran()
  lib <- tryCatch(compile_shlib(c_finalizer_source, "cfinalizer"), error = function(e) NULL)
  skip_if(is.null(lib), "no C compiler")
  foreign <- foreign_references()
  on.exit(unlink(foreign$file))
  name <- sprintf("cfin%x", Sys.getpid())
  published <- share(as.double(1:4000), name = name)
  on.exit(unshare(name), add = TRUE)
  out <- rscript_child(c(
    finalizer_child_prelude,
    "dll <- dyn.load(commandArgs(TRUE)[1])",
    "foreign <- readRDS(commandArgs(TRUE)[2])",
    "name <- commandArgs(TRUE)[3]",
    "invisible(gc())",
    "base <- counts()",
    "for (i in 1:40) local({",
    "  j <- i",
    "  fn <- function(...) {",
    "    s <- share(as.double(1:5000) + j); small <- share(list(j, 'x'))",
    "    m <- map_shared(name); fv <- unserialize(foreign$x)",
    "    assign(as.character(j), c(s[1], small[[1]], sum(m), sum(fv)), envir = seen)",
    "  }",
    "  p <- .Call(dll$mori_test_c_finalized, fn, j %% 2 == 0)",
    "})",
    "invisible(gc()); invisible(gc()); invisible(gc())",
    "want <- function(j) c(1 + j, j, sum(as.double(1:4000)), sum(as.double(1:5000) * 3))",
    "ok <- all(vapply(1:40, function(j) identical(seen[[as.character(j)]], want(j)), TRUE))",
    "cat(base, '|', counts(), '|', length(ls(seen)), ok, '\\n')"
  ), args = c(lib, foreign$file, name))
  fields <- strsplit(trimws(tail(out, 1)), " ")[[1]]
  expect_identical(fields[5:7], fields[1:3], label = "descriptors, mappings, regions after the finalizers")
  expect_identical(fields[9:10], c("40", "TRUE"))
})

test_that("shares made by finalizers run at exit leave nothing in /dev/shm", {
  skip_on_cran()
  lib <- tryCatch(compile_shlib(c_finalizer_source, "cfinalizer"), error = function(e) NULL)
  foreign <- foreign_references()
  on.exit(unlink(foreign$file))
  marks <- tempfile()
  on.exit(unlink(marks), add = TRUE)
  tag <- sprintf("exitfin%x", Sys.getpid())
  out <- rscript_child(c(
    finalizer_child_prelude,
    "foreign <- readRDS(commandArgs(TRUE)[1]); marks <- commandArgs(TRUE)[2]; tag <- commandArgs(TRUE)[3]",
    "lib <- commandArgs(TRUE)[4]",
    "work <- function(j) {",
    "  s <- share(as.double(1:5000) + j); small <- share(list(j, letters))",
    "  name <- sprintf('%s_%d_%d', tag, Sys.getpid(), j)",
    "  p <- share(as.double(1:3000), name = name); m <- map_shared(name); unshare(name)",
    "  fv <- unserialize(foreign$x)",
    "  cat(j, s[1] == 1 + j, small[[1]] == j, sum(m) == sum(as.double(1:3000)), sum(fv) == sum(as.double(1:5000) * 3), '\\n', file = marks, append = TRUE)",
    "}",
    "for (i in 1:20) local({ j <- i; e <- new.env(); reg.finalizer(e, function(e) work(j), onexit = TRUE); assign(paste0('keep', j), e, envir = globalenv()) })",
    "if (nzchar(lib)) { dll <- dyn.load(lib); for (i in 21:30) local({ j <- i; assign(paste0('keep', j), .Call(dll$mori_test_c_finalized, function(...) work(j), FALSE), envir = globalenv()) }) }",
    "cat('PID', Sys.getpid(), '\\n')"
  ), args = c(foreign$file, marks, tag, if (is.null(lib)) "" else lib))
  pid <- as.integer(sub("^PID ", "", grep("^PID", out, value = TRUE)))
  ran <- strsplit(trimws(readLines(marks)), " ")
  expect_length(ran, if (is.null(lib)) 20L else 30L)
  expect_true(all(vapply(ran, function(f) all(f[-1] == "TRUE"), TRUE)))
  left <- list.files("/dev/shm", pattern = paste0("^mori.*(", tag, "|", sprintf("_%x_", pid), ")"))
  expect_identical(left, character())
})
