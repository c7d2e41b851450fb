# Invariant "results travel by value" (DESIGN.md), second half: an object a
# worker shared and returns arrives whole, after the worker exited, was
# reset, or dropped its own reference when the task ended.

# Made the same way in every process (workers have their own random streams).
result_value <- function() {
  list(v = seq(0.5, 1e5), df = data.frame(a = sin(1:5e4), s = c("x", NA, "y")[1:5e4 %% 3 + 1]),
       m = matrix(1:2e4, 100, dimnames = list(NULL, paste0("c", 1:200))))
}

expect_plain_result <- function(got) {
  expect_identical(got, result_value())
  expect_false(is_shared(got$v))
  expect_false(is_shared(got$df$a))
}

test_that("callr: r(), r_bg() and r_session results arrive after the child dropped or lost them", {
  skip_if_not_installed("callr")
  make <- result_value
  environment(make) <- globalenv()
  got <- callr::r(function(make) mori::share(make()), args = list(make = make), libpath = .libPaths())
  expect_plain_result(got)
  bg <- callr::r_bg(function(make) mori::share(make()), args = list(make = make), libpath = .libPaths())
  bg$wait()
  Sys.sleep(0.2)
  expect_false(bg$is_alive())
  expect_plain_result(bg$get_result())
  rs <- callr::r_session$new(callr::r_session_options(libpath = .libPaths()))
  on.exit(rs$close(), add = TRUE)
  got <- rs$run(function(make) mori::share(make()), args = list(make = make))
  rs$run(function() gc())
  expect_plain_result(got)
})

test_that("parallel: mclapply and mcparallel results arrive after the children exited", {
  skip_without_fork()
  got <- parallel::mclapply(1:2, function(i) share(result_value()), mc.cores = 2)
  for (g in got) expect_plain_result(g)
  job <- parallel::mcparallel(share(result_value()))
  expect_plain_result(parallel::mccollect(job)[[1]])
})

test_that("parallel: a socket worker's result arrives after the worker dropped it and stopped", {
  cl <- parallel::makeCluster(1)
  parallel::clusterCall(cl, .libPaths, .libPaths())
  make <- result_value
  environment(make) <- globalenv()
  got <- parallel::clusterCall(cl, function(make) mori::share(make()), make)[[1]]
  parallel::clusterEvalQ(cl, gc())
  parallel::stopCluster(cl)
  expect_plain_result(got)
})

test_that("a worker's result keeps references to the parent's regions and carries its own as values", {
  skip_if_not_installed("callr")
  parent <- share(rnorm(1e5))
  got <- callr::r(function(p) list(parent = p, own = mori::share(seq(0.5, 1e5))),
                  args = list(p = parent), libpath = .libPaths())
  expect_identical(shared_name(got$parent), shared_name(parent))
  expect_false(is_shared(got$own))
  expect_identical(got$own, seq(0.5, 1e5))
})

test_that("future multicore and multisession results arrive after the workers are gone", {
  skip_on_cran()
  skip_if_not_installed("future")
  with_libs <- function(code) {
    old <- Sys.getenv("R_LIBS")
    Sys.setenv(R_LIBS = paste(.libPaths(), collapse = ":"))
    on.exit(Sys.setenv(R_LIBS = old))
    force(code)
  }
  make <- result_value
  environment(make) <- globalenv()
  with_libs({
    on.exit(future::plan(future::sequential), add = TRUE)
    if (future::supportsMulticore()) {
      future::plan(future::multicore, workers = 2)
      expect_plain_result(future::value(future::future(mori::share(make()), globals = list(make = make))))
    }
    # (With one worker, future evaluates in this session.)
    future::plan(future::multisession, workers = 2)
    got <- future::value(future::future(mori::share(make()), globals = list(make = make)))
    future::plan(future::sequential)
    gc()
    expect_plain_result(got)
  })
})

test_that("mirai: results arrive after the daemon cleaned up and after daemons(0)", {
  skip_on_cran()
  skip_if_not_installed("mirai")
  old <- Sys.getenv("R_LIBS")
  Sys.setenv(R_LIBS = paste(.libPaths(), collapse = ":"))
  on.exit(Sys.setenv(R_LIBS = old), add = TRUE)
  mirai::daemons(1)
  on.exit(mirai::daemons(0), add = TRUE)
  mirai::everywhere(.libPaths(.lib), .lib = .libPaths())
  make <- result_value
  environment(make) <- globalenv()
  first <- mirai::mirai(mori::share(make()), make = make)[]
  # The daemon's own copy is gone (cleanup and gc) before the next one is read.
  mirai::mirai(gc())[]
  second <- mirai::mirai(mori::share(make()), make = make)
  mirai::call_mirai(second)
  mirai::daemons(0)
  gc()
  expect_plain_result(first)
  expect_plain_result(second$data)
})
