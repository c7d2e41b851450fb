# Invariant "results travel by value" (DESIGN.md), first half: a process
# that is itself a worker (a callr child, a socket worker, a forked child)
# still sends references to its own workers.

test_that("a callr child's own shared objects serialize as references", {
  skip_if_not_installed("callr")
  sizes <- callr::r(function() {
    x <- mori::share(rnorm(1e6))
    df <- mori::share(data.frame(a = rnorm(1e5), g = factor(sample(letters, 1e5, TRUE))))
    c(vector = length(serialize(x, NULL)), frame = length(serialize(list(df = df), NULL)),
      file = { f <- tempfile(); saveRDS(x, f); file.size(f) }, shared = mori::is_shared(x))
  }, libpath = .libPaths())
  expect_lt(sizes[["vector"]], 2000)
  expect_lt(sizes[["frame"]], 2000)
  # The child's own saveRDS() is not its result: a reference too.
  expect_lt(sizes[["file"]], 2000)
  expect_equal(sizes[["shared"]], 1)
})

test_that("a callr child maps a shared data frame over its own 2 mirai daemons", {
  skip_on_cran()
  skip_if_not_installed("callr")
  skip_if_not_installed("mirai")
  out <- callr::r(function(libs) {
    Sys.setenv(R_LIBS = paste(libs, collapse = ":"))
    set.seed(11)
    plain <- data.frame(a = rnorm(2e5), b = runif(2e5), g = factor(sample(letters, 2e5, TRUE)))
    df <- mori::share(plain)
    mirai::daemons(2)
    on.exit(mirai::daemons(0))
    mirai::everywhere(.libPaths(.lib), .lib = libs)
    res <- mirai::mirai_map(1:4, function(i, data) {
      list(pid = Sys.getpid(), shared = mori::is_shared(data) && mori::is_shared(data$a),
           name = mori::shared_name(data), mean = mean(data[[1 + i %% 2]]))
    }, .args = list(data = df))[]
    list(res = res, name = mori::shared_name(df), payload = length(serialize(list(data = df), NULL)),
         means = c(mean(plain$a), mean(plain$b)), child = Sys.getpid())
  }, args = list(libs = .libPaths()), libpath = .libPaths())
  expect_lt(out$payload, 2000)
  pids <- vapply(out$res, `[[`, 0, "pid")
  expect_false(any(pids == out$child))
  expect_true(all(vapply(out$res, `[[`, TRUE, "shared")))
  for (r in out$res) expect_identical(r$name, out$name)
  expect_identical(vapply(out$res, `[[`, 0, "mean"), out$means[c(2, 1, 2, 1)])
})

test_that("a socket worker shares its own data with its own socket workers", {
  skip_on_cran()
  cl <- parallel::makeCluster(1)
  on.exit(parallel::stopCluster(cl), add = TRUE)
  parallel::clusterCall(cl, .libPaths, .libPaths())
  out <- parallel::clusterCall(cl, function() {
    inner <- parallel::makeCluster(2)
    on.exit(parallel::stopCluster(inner))
    parallel::clusterCall(inner, .libPaths, .libPaths())
    set.seed(12)
    x <- mori::share(rnorm(5e5))
    seen <- parallel::clusterCall(inner, function(v) c(sum = sum(v), shared = mori::is_shared(v), pid = Sys.getpid()), x)
    list(seen = seen, sum = sum(x), payload = length(serialize(x, NULL)), pid = Sys.getpid())
  })[[1]]
  expect_lt(out$payload, 2000)
  for (s in out$seen) {
    expect_identical(s[["sum"]], out$sum)
    expect_equal(s[["shared"]], 1)
    expect_false(s[["pid"]] == out$pid)
  }
})

test_that("a forked child shares its own data with a callr child of its own", {
  skip_on_cran()
  skip_if_not_installed("callr")
  libs <- .libPaths()
  job <- parallel::mcparallel({
    x <- mori::share(seq(0.5, 1e5))
    seen <- callr::r(function(v) c(sum(v), mori::is_shared(v)), args = list(v = x), libpath = libs)
    list(seen = seen, payload = length(serialize(x, NULL)))
  })
  out <- parallel::mccollect(job)[[1]]
  expect_lt(out$payload, 2000)
  expect_identical(out$seen, c(sum(seq(0.5, 1e5)), 1))
})

test_that("options(mori.materialize_own) overrides the rule in both directions", {
  skip_if_not_installed("callr")
  # TRUE: even the worker's own references to its own workers carry values.
  size <- callr::r(function() {
    options(mori.materialize_own = TRUE)
    length(serialize(mori::share(rnorm(1e5)), NULL))
  }, libpath = .libPaths())
  expect_gt(size, 8e5)
  # FALSE: even the result is a reference (here to a region the session keeps).
  rs <- callr::r_session$new(callr::r_session_options(libpath = .libPaths()))
  on.exit(rs$close(), add = TRUE)
  kept <- rs$run(function() {
    options(mori.materialize_own = FALSE)
    x <<- mori::share(seq(0.5, 1e4))
  })
  expect_true(is_shared(kept))
  expect_identical(kept, seq(0.5, 1e4))
  by_default <- rs$run(function() {
    options(mori.materialize_own = NULL)
    x
  })
  expect_false(is_shared(by_default))
  # Here (not a worker) TRUE makes the session's own objects values too.
  withr_opt <- options(mori.materialize_own = TRUE)
  on.exit(options(withr_opt), add = TRUE)
  expect_gt(length(serialize(share(rnorm(1e5)), NULL)), 8e5)
})
