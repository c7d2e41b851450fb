# Fork safety: mclapply children never free the parent's regions.
# Bigger runs and figures: tools/reliability/ (see its README.md).
# Shared helpers (rel_child(), rel_tag, ...): helper-reliability.R.

test_that("mclapply children that touch, copy, modify and collect shared objects never free the parent's regions", {
  skip_on_cran()
  skip_without_fork()
  set.seed(5)
  v <- rnorm(1e5)
  l <- list(a = 1:1e4, s = c("x", NA, "z"), d = data.frame(p = 1:3, q = c("a", "b", "c")))
  sv <- share(v)
  sl <- share(l)
  names0 <- c(shared_name(sv), shared_name(sl$a), shared_name(sl$s))
  out <- parallel::mclapply(1:8, function(i) {
    a <- sv
    a[1] <- i
    b <- sl
    b$a[2] <- -1L
    b$s[1] <- "changed"
    cp <- sv[]
    w <- sl$d
    w$p <- w$p * 2L
    rm(a, b, cp, w)
    gc()
    gc()
    c(sum(sv), sum(sl$a), i)
  }, mc.cores = 2)
  expect_false(any(vapply(out, inherits, TRUE, "try-error")))
  expect_equal(vapply(out, `[`, 1, 1), rep(sum(v), 8))
  gc()
  expect_identical(sv[], v)
  expect_identical(sl$a[], l$a)
  expect_identical(sl$s[], l$s)
  expect_identical(sl$d, l$d)
  expect_true(all(vapply(names0, function(n) !is.null(map_shared(n)), TRUE)))
})

test_that("100 mclapply tasks that each share() leave nothing behind", {
  skip_on_cran()
  skip_without_fork()
  gc()
  fds <- rel_fds()
  maps <- rel_maps()
  res <- parallel::mclapply(1:100, function(i) {
    s <- share(rnorm(1000) + i)
    p <- share(list(i = i, v = 1:100), name = sprintf("%s_mc%d", rel_tag, i))
    unshare(sprintf("%s_mc%d", rel_tag, i))
    list(sum = sum(s), x = s, name = shared_name(s))
  }, mc.cores = 2)
  expect_false(any(vapply(res, inherits, TRUE, "try-error")))
  expect_equal(length(unique(vapply(res, `[[`, "", "name"))), 100)
  # workers' own regions come back as values
  expect_false(any(vapply(res, function(r) is_shared(r$x), TRUE)))
  expect_equal(vapply(res, function(r) sum(r$x), 1), vapply(res, `[[`, 1, "sum"))
  gc()
  expect_equal(rel_fds(), fds)
  expect_equal(rel_maps(), maps)
  expect_length(rel_shm(), 0)
})
