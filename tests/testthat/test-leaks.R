# No leaks: descriptors and mappings return to baseline.
# Bigger runs and figures: tools/reliability/ (see its README.md).
# Shared helpers (rel_child(), rel_tag, ...): helper-reliability.R.

test_that("500 share/rm/gc cycles return descriptors and mappings to baseline", {
  skip_without_memfd()
  skip_on_cran()
  gc()
  fds <- rel_fds()
  maps <- rel_maps()
  regions <- nrow(shared_regions())
  big <- rnorm(2e5)
  objs <- list(rnorm(100), 1:1e4, c("a", NA, "\u00e9"), list(a = 1, b = list("x", 2L)),
               head(mtcars), iris, factor(c("u", "v")))
  for (i in 1:500) {
    s <- share(objs[[i %% length(objs) + 1]])
    b <- share(big)
    sl <- b[1:1e5]
    y <- map_shared(shared_name(b))
    z <- sum(sl) + sum(y)
    rm(s, b, sl, y)
    if (i %% 50 == 0) gc()
  }
  gc()
  gc()
  expect_equal(rel_fds(), fds)
  expect_equal(rel_maps(), maps)
  expect_equal(nrow(shared_regions()), regions)
})
