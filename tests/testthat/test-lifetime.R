test_that("a region lives while the owner holds it and is gone after the owner drops it", {
  x <- share(as.double(seq_len(1e5)) + 0.25)
  nm <- shared_name(x)
  expected <- sum(as.double(seq_len(1e5)) + 0.25)

  # while held: mapped here, a descriptor is open, a consumer can map it
  expect_true(maps_region(nm))
  expect_true(fds_region(nm))
  expect_true(nm %in% shared_regions()$name)
  got <- in_child(function(name) sum(mori::map_shared(name)), list(name = nm))
  expect_identical(got, expected)

  # still alive after a gc() while held
  full_gc()
  expect_identical(in_child(function(name) sum(mori::map_shared(name)), list(name = nm)), expected)

  # dropped: no mapping, no descriptor, and nobody can map it any more
  rm(x)
  full_gc()
  expect_false(maps_region(nm))
  expect_false(fds_region(nm))
  expect_false(nm %in% shared_regions()$name)
  expect_error(map_shared(nm), "not found", class = "mori_error_not_found")
  expect_match(child_map_error(nm), "not found")
})

test_that("anything taken from the owner's object keeps the region alive", {
  x <- share(as.double(seq_len(1e5)))
  nm <- shared_name(x)
  y <- map_shared(nm)
  rm(x)
  full_gc()
  # y still reads from the region, so it must still be there
  expect_true(maps_region(nm))
  expect_identical(y[c(1, 1e5)], c(1, 1e5))
  expect_identical(in_child(function(name) sum(mori::map_shared(name)), list(name = nm)),
                   sum(as.double(seq_len(1e5))))
  rm(y)
  full_gc()
  expect_false(maps_region(nm))
  expect_false(fds_region(nm))
  expect_match(child_map_error(nm), "not found")
})

test_that("elements of a shared list keep the region alive", {
  l <- share(list(a = as.double(1:1e5), b = letters))
  nm <- shared_name(l)
  a <- l$a
  rm(l)
  full_gc()
  expect_true(maps_region(nm) || fds_region(nm))
  expect_identical(a, as.double(1:1e5))
  expect_identical(in_child(function(name) mori::map_shared(name)$b, list(name = nm)), letters)
  rm(a)
  full_gc()
  expect_false(maps_region(nm))
  expect_false(fds_region(nm))
  expect_match(child_map_error(nm), "not found")
})

test_that("many regions shared and dropped leave no mappings or descriptors", {
  names <- character()
  for (i in 1:50) {
    s <- share(rnorm(5000) + i)
    names[i] <- shared_name(s)
  }
  rm(s)
  full_gc()
  maps <- readLines("/proc/self/maps")
  links <- suppressWarnings(Sys.readlink(list.files("/proc/self/fd", full.names = TRUE)))
  for (nm in names) {
    expect_false(any(grepl(memfd_pattern(nm), maps)), label = nm)
    expect_false(any(grepl(memfd_pattern(nm), links)), label = nm)
    expect_false(nm %in% shared_regions()$name, label = nm)
  }
})

test_that("a consumer's mapping is released when the consumer drops it", {
  x <- share(rnorm(1e5))
  nm <- shared_name(x)
  res <- in_child(function(name) {
    # a memfd file, or a POSIX shm object (the posix-shm backend)
    pat <- paste0("(memfd:|/dev/shm/)", sub("^/(mori_[0-9a-f]+_[0-9a-f]+)_.*$", "\\1", name), "( |$)")
    has <- function() {
      any(grepl(pat, readLines("/proc/self/maps"))) ||
        any(grepl(pat, suppressWarnings(Sys.readlink(list.files("/proc/self/fd", full.names = TRUE)))))
    }
    y <- mori::map_shared(name)
    s <- sum(y)
    during <- has()
    rm(y)
    for (i in 1:3) gc()
    list(sum = s, during = during, after = has(), regions = nrow(mori::shared_regions()))
  }, list(name = nm))
  expect_identical(res$sum, sum(x))
  expect_true(res$during)
  expect_false(res$after)
  expect_identical(res$regions, 0L)
})

test_that("a child that shares and exits normally leaves nothing behind", {
  skip_if_not_installed("callr")
  # (mori never makes files in /dev/shm for ordinary regions; other software
  # may, and so may a suite running at the same time, so only names the
  # child could have made count, compared with what is there before)
  shm_before <- list.files("/dev/shm", pattern = "^mori")
  # the child shares, keeps its objects alive until it exits
  out <- in_child(function() {
    x <- mori::share(rnorm(1e5))
    l <- mori::share(list(a = 1:10, b = rnorm(1e4)))
    assign("keep", list(x, l), envir = globalenv())
    list(names = c(mori::shared_name(x), mori::shared_name(l)), pid = Sys.getpid())
  })
  expect_false(dir.exists(file.path("/proc", out$pid)))
  for (nm in out$names) {
    expect_error(map_shared(nm), "not found", class = "mori_error_not_found")
    expect_match(child_map_error(nm), "not found")
    expect_false(region_anywhere(nm), label = nm)
  }
  # mori's memory file names carry their maker's pid: mori_<pid>_<serial>
  child_prefix <- sub("_[0-9a-f]+$", "_", mori:::name_parts(out$names[1])[["file"]])
  expect_match(child_prefix, sprintf("^mori_%x_$", out$pid))
  expect_length(setdiff(list.files("/dev/shm", pattern = paste0("^", child_prefix)), shm_before), 0)

  # same with an Rscript child that quits with q()
  lines <- rscript_child(c(
    "library(mori)",
    "x <- share(rnorm(1e5))",
    "cat(shared_name(x), '\\n')",
    "q(save = 'no')"
  ))
  nm <- trimws(lines[length(lines)])
  expect_match(nm, "^/mori_[0-9a-f]+_[0-9a-f]+_[0-9a-f]+$")
  expect_error(map_shared(nm), "not found", class = "mori_error_not_found")
  expect_false(region_anywhere(nm))
})

test_that("a consumer keeps the region alive after its owner has exited", {
  skip_if_not_installed("callr")
  rs <- callr::r_session$new(callr::r_session_options(libpath = .libPaths()))
  on.exit(rs$close(), add = TRUE)
  nm <- rs$run(function() {
    assign("x", mori::share(as.double(1:1e5)), envir = globalenv())
    mori::shared_name(x)
  })
  owner_pid <- rs$get_pid()
  y <- map_shared(nm)
  expect_identical(y, as.double(1:1e5))
  rs$close()
  for (i in 1:50) if (dir.exists(file.path("/proc", owner_pid))) Sys.sleep(0.1)
  expect_false(dir.exists(file.path("/proc", owner_pid)))
  # the owner is gone, but this process still reads its pages
  expect_identical(sum(y), sum(as.double(1:1e5)))
  expect_identical(y[c(1, 1e5)], c(1, 1e5))
  # a new consumer cannot find it
  expect_match(child_map_error(nm), "not found")
  # dropping the last view releases it here too
  rm(y)
  full_gc()
  expect_false(maps_region(nm))
  expect_false(fds_region(nm))
  expect_false(region_anywhere(nm))
})
