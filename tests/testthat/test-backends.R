# Every parallel backend users reach for: values right in real workers, the
# payload a reference rather than the data, and results that come back.

backend_data <- function() {
  set.seed(7)
  df <- data.frame(a = rnorm(2e5), b = runif(2e5), g = factor(sample(letters, 2e5, TRUE)))
  list(df = df, shared = share(df), lst = share(list(x = rnorm(1e5), y = 1:1e5, z = letters)))
}

# Makes the workers find the package under test (R_LIBS for new processes).
with_libs <- function(code) {
  old <- Sys.getenv("R_LIBS")
  Sys.setenv(R_LIBS = paste(.libPaths(), collapse = ":"))
  on.exit(Sys.setenv(R_LIBS = old))
  force(code)
}

test_that("mirai: daemons, mirai(), mirai_map() over a list and over rows, everywhere()", {
  skip_on_cran()
  skip_if_not_installed("mirai")
  d <- backend_data()
  with_libs({
    mirai::daemons(2)
    on.exit(mirai::daemons(0), add = TRUE)
    mirai::everywhere(.libPaths(.lib), .lib = .libPaths())
    loaded <- mirai::everywhere(library(mori))
    m <- mirai::mirai(list(mean = mean(df$a), shared = mori::is_shared(df), pid = Sys.getpid()),
                      df = d$shared)[]
    expect_equal(m$mean, mean(d$df$a))
    expect_true(m$shared)
    # What the task carries: a reference, not the data.
    expect_lt(length(serialize(list(df = d$shared), NULL)), 2000)
    expect_gt(length(serialize(list(df = d$df), NULL)), 1e6)
    # Over a shared list: one small reference per element.
    res <- mirai::mirai_map(d$lst, function(v) list(len = length(v), shared = mori::is_shared(v)))[]
    expect_equal(vapply(res, `[[`, 0, "len"), c(x = 1e5, y = 1e5, z = 26))
    expect_true(all(vapply(res, `[[`, TRUE, "shared")))
    expect_true(all(vapply(d$lst, function(v) length(serialize(v, NULL)) < 200, logical(1))))
    # Over rows of a shared data frame.
    rows <- mirai::mirai_map(d$shared[1:5, c("a", "b")], function(a, b) a + b)[]
    expect_equal(unlist(rows), d$df$a[1:5] + d$df$b[1:5])
  })
})

test_that("purrr::map(in_parallel()) sends the reference", {
  skip_on_cran()
  skip_if_not_installed("mirai")
  skip_if_not_installed("purrr", minimum_version = "1.1.0")
  skip_if_not_installed("carrier")
  d <- backend_data()
  with_libs({
    mirai::daemons(2)
    on.exit(mirai::daemons(0), add = TRUE)
    mirai::everywhere(.libPaths(.lib), .lib = .libPaths())
    out <- purrr::map(1:2, purrr::in_parallel(\(i) c(mean(data$a), mori::is_shared(data$a)), data = d$shared))
    expect_equal(out[[1]], c(mean(d$df$a), 1))
  })
})

test_that("future: multisession future() and future_lapply()", {
  skip_on_cran()
  skip_if_not_installed("future")
  skip_if_not_installed("future.apply")
  d <- backend_data()
  with_libs({
    future::plan(future::multisession, workers = 2)
    on.exit(future::plan(future::sequential), add = TRUE)
    shared <- d$shared
    f <- future::future(list(mean(shared$b), mori::is_shared(shared$b)), globals = list(shared = shared))
    v <- future::value(f)
    expect_equal(v[[1]], mean(d$df$b))
    expect_true(v[[2]])
    means <- future.apply::future_lapply(as.list(d$shared[c("a", "b")]), function(col) c(mean(col), mori::is_shared(col)))
    expect_equal(unname(vapply(means, `[`, 0, 1)), c(mean(d$df$a), mean(d$df$b)))
    expect_true(all(vapply(means, `[`, 0, 2) == 1))
  })
})

test_that("parallel: PSOCK parLapply and FORK mclapply", {
  skip_on_cran()
  d <- backend_data()
  cl <- parallel::makeCluster(2)
  on.exit(parallel::stopCluster(cl), add = TRUE)
  parallel::clusterCall(cl, .libPaths, .libPaths())
  parallel::clusterEvalQ(cl, library(mori))
  x <- d$shared$a
  out <- parallel::parLapply(cl, 1:2, function(i, v) c(sum(v), mori::is_shared(v)), v = x)
  expect_equal(out[[1]], c(sum(d$df$a), 1))
  forked <- parallel::mclapply(1:2, function(i) c(sum(x), is_shared(x)), mc.cores = 2)
  expect_equal(forked[[2]], c(sum(d$df$a), 1))
  # The parent's region survives its children.
  expect_identical(x, d$df$a)
})

test_that("foreach with doParallel", {
  skip_on_cran()
  skip_if_not_installed("foreach")
  skip_if_not_installed("doParallel")
  d <- backend_data()
  cl <- parallel::makeCluster(2)
  on.exit(parallel::stopCluster(cl), add = TRUE)
  parallel::clusterCall(cl, .libPaths, .libPaths())
  doParallel::registerDoParallel(cl)
  on.exit(foreach::registerDoSEQ(), add = TRUE)
  `%dopar%` <- foreach::`%dopar%`
  shared <- d$shared
  res <- foreach::foreach(col = c("a", "b"), .packages = "mori") %dopar% c(mean(shared[[col]]), is_shared(shared[[col]]))
  expect_equal(res[[2]], c(mean(d$df$b), 1))
})

test_that("results shared in a worker come back readable after the worker is gone", {
  skip_on_cran()
  skip_if_not_installed("callr")
  # callr: the child exits before the parent reads its result.
  r <- callr::r(function() mori::share(list(v = seq(0.5, 10), s = c("a", NA))), libpath = .libPaths())
  expect_identical(r, list(v = seq(0.5, 10), s = c("a", NA)))
  # PSOCK: the worker is stopped before the parent looks at the value.
  cl <- parallel::makeCluster(1)
  parallel::clusterCall(cl, .libPaths, .libPaths())
  p <- parallel::clusterEvalQ(cl, mori::share(1:10 + 0.5))[[1]]
  parallel::stopCluster(cl)
  gc()
  expect_identical(p, 1:10 + 0.5)
  # mirai: the daemon is reset before the value is used.
  skip_if_not_installed("mirai")
  with_libs({
    mirai::daemons(1)
    mirai::everywhere(.libPaths(.lib), .lib = .libPaths())
    m <- mirai::mirai(mori::share(c(a = 1, b = 2)))[]
    mirai::daemons(0)
    gc()
    expect_identical(m, c(a = 1, b = 2))
  })
  # future
  skip_if_not_installed("future")
  with_libs({
    future::plan(future::multisession, workers = 1)
    v <- future::value(future::future(mori::share(letters)))
    future::plan(future::sequential)
    gc()
    expect_identical(v, letters)
  })
  # A worker returning the parent's data returns the reference (the parent owns it).
  d <- backend_data()
  back <- callr::r(function(x) x, args = list(x = d$shared$a), libpath = .libPaths())
  expect_identical(shared_name(back), shared_name(d$shared$a))
})
