# A crashed (SIGKILLed) owner: its regions are gone, pruned, never confused
# with a region published again under the same name.
# Bigger runs and figures: tools/reliability/ (see its README.md).
# Shared helpers (rel_child(), rel_tag, ...): helper-reliability.R.

test_that("after an owner is killed with SIGKILL its regions are not found and nothing is left", {
  skip_on_cran()
  skip_if_not_installed("callr")
  bg <- callr::r_bg(function() {
    x <- mori::share(rnorm(1e5))
    cat(mori::shared_name(x), "\n")
    Sys.sleep(60)
  }, libpath = .libPaths(), stdout = "|")
  name <- rel_line(bg)
  expect_match(name, "^/mori_")
  expect_false(is.null(map_shared(name)))
  gc()
  bg$signal(9)
  bg$wait(5000)
  gc()
  expect_match(rel_err(map_shared(name)), "not found")
  file <- memfd_file(name)
  # A POSIX shm name outlives its creator until prune_shared() removes it
  # (a memfd file goes with the last descriptor).
  if (region_backend() == "posix-shm") {
    expect_true(any(grepl(file, list.files("/dev/shm"), fixed = TRUE)))
    prune_shared()
  }
  expect_false(any(grepl(file, list.files("/dev/shm"), fixed = TRUE)))
  # no process maps or holds it any more
  skip_without_proc()
  holders <- vapply(list.files("/proc", pattern = "^[0-9]+$"), function(p) {
    maps <- tryCatch(suppressWarnings(readLines(file.path("/proc", p, "maps"))), error = function(e) character())
    links <- suppressWarnings(Sys.readlink(list.files(file.path("/proc", p, "fd"), full.names = TRUE)))
    any(grepl(paste0("(memfd:|/dev/shm/)", file, "( |$)"), c(maps, links)))
  }, TRUE)
  expect_false(any(holders))
})

test_that("prune_shared() removes the region of a SIGKILLed publisher and never one of a live process", {
  skip_on_cran()
  skip_if_not_installed("callr")
  live <- paste0(rel_tag, "_live")
  dead <- paste0(rel_tag, "_dead")
  x <- share(1:10, name = live)
  on.exit(unshare(live), add = TRUE)
  bg <- callr::r_bg(function(dead) {
    x <- mori::share(letters, name = dead)
    cat("published\n")
    Sys.sleep(60)
  }, args = list(dead = dead), libpath = .libPaths(), stdout = "|")
  rel_line(bg)
  expect_identical(map_shared(dead)[], letters)
  bg$signal(9)
  bg$wait(5000)
  expect_true(file.exists(file.path("/dev/shm", paste0("mori.", dead))))
  vis <- withVisible(prune_shared())
  expect_false(vis$visible)
  expect_true(dead %in% vis$value)
  expect_false(live %in% vis$value)
  expect_false(file.exists(file.path("/dev/shm", paste0("mori.", dead))))
  expect_identical(map_shared(live)[], 1:10)
  gc() # drops this process's view of the dead region
  # nothing is published under the name any more: NULL, as for any bare word
  expect_null(map_shared(dead))
})

test_that("a name published again maps to the new region, not to a cached old one", {
  skip_on_cran()
  skip_if_not_installed("callr")
  name <- paste0(rel_tag, "_again")
  old <- share(c(1, 2), name = name)
  on.exit(unshare(name), add = TRUE)
  callr::r(function(name) {
    mori::unshare(name)
    x <- mori::share(c(7, 8, 9), name = name)
    NULL
  }, list(name), libpath = .libPaths())
  expect_identical(map_shared(name)[], c(7, 8, 9))
})
