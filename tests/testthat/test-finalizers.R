# Shares made inside finalizers are released: R drops the weak references
# (finalizers) registered while it runs a batch of finalizers, so the views
# made by share() or map_shared() in a finalizer would never unmap their
# regions (100 finalizers that each shared left 99 regions for the rest of
# the process). mori registers those views' finalizers again at the next
# safe point: the next top-level task callback, or the next share() or
# map_shared() made outside a finalizer.

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
  seen <- new.env()
  local({
    e <- new.env()
    reg.finalizer(e, function(e) assign("inside", mori:::from_finalizer(), envir = seen))
  })
  full_gc()
  expect_true(seen$inside)
})
