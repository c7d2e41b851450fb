# Error kinds that need a particular situation to arise.

test_that("a stored object R cannot unserialize here is mori_error_unrestorable", {
  skip_on_cran()
  skip_if_not_installed("callr")
  # An environment (kept as serialization bytes) holding a view of a
  # published region that is unpublished before another process reads it:
  # unserializing the environment there meets a reference to nothing.
  inner <- sprintf("unrestorable-in-%d", Sys.getpid())
  outer <- sprintf("unrestorable-out-%d", Sys.getpid())
  on.exit(try(unshare(inner), silent = TRUE), add = TRUE)
  on.exit(try(unshare(outer), silent = TRUE), add = TRUE)
  v <- share(as.double(1:1e5), name = inner)
  e <- new.env()
  e$v <- v
  obj <- share(list(e = e, pad = as.double(1:1e4)), name = outer)
  unshare(inner)
  got <- callr::r(function(outer) {
    classes <- function(expr) tryCatch({ expr; "ok" }, error = function(err) class(err))
    # R 4.2 makes the list's elements when it maps it, R >= 4.3 on first use.
    x <- NULL
    first <- classes(x <- mori::map_shared(outer))
    if (identical(first, "ok")) first <- classes(x$e)
    first
  }, list(outer = outer))
  expect_identical(got[1:3], c("mori_error_unrestorable", "mori_error", "error"))
  # In the process that shared it, the original is returned as it is.
  expect_identical(obj$e, e)
})
