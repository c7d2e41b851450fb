test_that("an Rscript child reads shared vectors from serialize() bytes in a file", {
  set.seed(1)
  d <- share(rnorm(2e5))
  i <- share(sample.int(1e6, 1e5))
  m <- share(matrix(as.double(1:1e4), 100, dimnames = list(NULL, paste0("c", 1:100))))
  f_d <- tempfile(); f_i <- tempfile(); f_m <- tempfile()
  on.exit(unlink(c(f_d, f_i, f_m)), add = TRUE)
  writeBin(serialize(d, NULL), f_d)
  writeBin(serialize(i, NULL), f_i)
  writeBin(serialize(m, NULL), f_m)
  # the files hold references, not data
  expect_lt(file.size(f_d), 200)
  expect_lt(file.size(f_i), 200)
  out <- rscript_child(c(
    "library(mori)",
    "args <- commandArgs(TRUE)",
    "rd <- function(f) unserialize(readBin(f, 'raw', file.size(f)))",
    "d <- rd(args[1]); i <- rd(args[2]); m <- rd(args[3])",
    "cat('D', sprintf('%.10e', sum(d)), length(d), is_shared(d), shared_name(d), '\\n')",
    "cat('I', sum(as.double(i)), length(i), is_shared(i), '\\n')",
    "cat('M', sum(m), paste(dim(m), collapse = 'x'), colnames(m)[100], is_shared(m), '\\n')",
    "cat('N', sprintf('%.17g', sum(map_shared(args[4]))), '\\n')"
  ), c(f_d, f_i, f_m, shared_name(d)))
  line <- function(tag) strsplit(trimws(grep(paste0("^", tag, " "), out, value = TRUE)), " +")[[1]]
  expect_identical(line("D"), c("D", sprintf("%.10e", sum(d)), "200000", "TRUE", shared_name(d)))
  expect_identical(line("I"), c("I", format(sum(as.double(i)), scientific = FALSE), "100000", "TRUE"))
  expect_identical(line("M"), c("M", format(sum(m)), "100x100", "c100", "TRUE"))
  expect_identical(as.numeric(line("N")[2]), sum(d))
})

test_that("a PSOCK cluster worker reads shared vectors (clusterExport, parLapply)", {
  cl <- parallel::makeCluster(2)
  on.exit(parallel::stopCluster(cl), add = TRUE)
  parallel::clusterCall(cl, .libPaths, .libPaths())
  parallel::clusterEvalQ(cl, library(mori))
  set.seed(2)
  x <- share(rnorm(1e6))
  cplx <- share(complex(real = 1:1e4, imaginary = -1))
  fac <- share(factor(sample(letters, 1e5, TRUE)))
  parallel::clusterExport(cl, c("x", "cplx", "fac"), envir = environment())
  res <- parallel::clusterEvalQ(cl, list(
    sum = sum(x), shared = is_shared(x), name = shared_name(x),
    cplx = sum(cplx), tab = table(fac), pid = Sys.getpid()
  ))
  for (r in res) {
    expect_identical(r$sum, sum(x))
    expect_true(r$shared)
    expect_identical(r$name, shared_name(x))
    expect_identical(r$cplx, sum(cplx))
    expect_identical(r$tab, table(fac))
    expect_false(r$pid == Sys.getpid())
  }
  # parLapply: chunks computed by workers from the shared vector
  idx <- split(seq_along(x), rep(1:8, length.out = length(x)))
  sums <- parallel::parLapply(cl, idx, function(i, v) sum(v[i]), v = x)
  expect_equal(sum(unlist(sums)), sum(x))
  expect_identical(unname(unlist(sums)), unname(vapply(idx, function(i) sum(x[i]), 0)))
  # workers map by name too
  nm <- shared_name(x)
  by_name <- parallel::parLapply(cl, 1:2, function(k, name) {
    y <- mori::map_shared(name)
    c(sum(y), mori::is_shared(y))
  }, name = nm)
  for (b in by_name) expect_identical(b, c(sum(x), 1))
  # what a worker sends back for an unmodified view is the same shared object
  back <- parallel::parLapply(cl, 1:2, function(k, v) v, v = x)
  for (b in back) {
    expect_identical(b, x[])
    expect_identical(shared_name(b), nm)
  }
})

test_that("a callr child reads shared vectors and maps them by name", {
  set.seed(3)
  x <- share(rnorm(3e5))
  l <- share(c(TRUE, NA, FALSE))
  r <- share(as.raw(0:255))
  res <- in_child(function(x, l, r, name) {
    y <- mori::map_shared(name)
    list(sum = sum(x), l = l, r = r, y = sum(y), yid = identical(x, y),
         shared = c(mori::is_shared(x), mori::is_shared(y)),
         names = c(mori::shared_name(x), mori::shared_name(y)))
  }, list(x = x, l = l, r = r, name = shared_name(x)))
  expect_identical(res$sum, sum(x))
  expect_identical(res$l, c(TRUE, NA, FALSE))
  expect_identical(res$r, as.raw(0:255))
  expect_identical(res$y, sum(x))
  expect_true(res$yid)
  expect_identical(res$shared, c(TRUE, TRUE))
  expect_identical(res$names, rep(shared_name(x), 2))
})

test_that("a region shared by a child is readable here while the child holds it", {
  skip_if_not_installed("callr")
  rs <- callr::r_session$new(callr::r_session_options(libpath = .libPaths()))
  on.exit(rs$close(), add = TRUE)
  info <- rs$run(function() {
    set.seed(4)
    assign("x", mori::share(rnorm(1e5)), envir = globalenv())
    list(name = mori::shared_name(x), sum = sum(x), ref = serialize(x, NULL))
  })
  y <- map_shared(info$name)
  expect_identical(sum(y), info$sum)
  expect_true(is_shared(y))
  expect_identical(shared_name(y), info$name)
  z <- unserialize(info$ref)
  expect_identical(z, y)
  expect_lt(length(info$ref), 200)
  set.seed(4)
  expect_identical(y[], rnorm(1e5))
})
