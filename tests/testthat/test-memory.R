skip_if_not(file.exists("/proc/self/smaps_rollup"), "no /proc/self/smaps_rollup")

test_that("a consumer reads the shared pages in place, without a private copy", {
  skip_on_cran()
  n <- 1e7 # 80 MB
  x <- share(seq_len(n) + 0.5)
  res <- in_child(function(name) {
    mem <- function(field, file) {
      l <- grep(paste0("^", field, ":"), readLines(file), value = TRUE)
      as.numeric(gsub("[^0-9]", "", l)) / 1024
    }
    gc()
    anon0 <- mem("Anonymous", "/proc/self/smaps_rollup")
    shm0 <- mem("RssShmem", "/proc/self/status")
    y <- mori::map_shared(name)
    m <- mean(y) # reads every element
    last <- y[length(y)]
    list(
      mean = m, last = last,
      anon = mem("Anonymous", "/proc/self/smaps_rollup") - anon0,
      shm = mem("RssShmem", "/proc/self/status") - shm0
    )
  }, list(name = shared_name(x)))
  expect_identical(res$mean, mean(x))
  expect_identical(res$last, n + 0.5)
  # the 80 MB were not copied into the child's private memory...
  expect_lt(res$anon, 16)
  # ...they are the shared pages
  expect_gt(res$shm, 60)
})

test_that("writing one element of a large view copies about one page, not the vector", {
  skip_on_cran()
  # POSIX shm objects cannot be mapped copy-on-write (macOS): a written
  # view is a private copy there.
  skip_if_not(region_backend() %in% c("memfd", "windows"), "no copy-on-write mappings of regions here")
  x <- share(seq_len(1e7) + 0.5)
  nm <- shared_name(x)
  y <- map_shared(nm)
  invisible(mean(x))
  gc()
  anon0 <- mem_mb("Anonymous")
  x[5e6] <- 0
  anon1 <- mem_mb("Anonymous")
  expect_identical(x[5e6], 0)
  expect_identical(y[5e6], 5e6 + 0.5)
  expect_lt(anon1 - anon0, 16)
  # serializing the modified object writes its values
  expect_gt(length(serialize(x, NULL)), 8e7)
})

test_that("the owner's shared pages are released when it drops the object", {
  skip_on_cran()
  gc()
  shm0 <- mem_mb("RssShmem")
  x <- share(seq_len(1e7) + 0.5)
  invisible(mean(x))
  nm <- shared_name(x)
  shm1 <- mem_mb("RssShmem")
  expect_gt(shm1 - shm0, 60)
  row <- shared_regions()[shared_regions()$name == nm, ]
  expect_identical(nrow(row), 1L)
  expect_gte(row$bytes, 8e7)
  expect_true(row$owner)
  rm(x)
  full_gc()
  expect_lt(mem_mb("RssShmem") - shm0, 16)
  expect_false(nm %in% shared_regions()$name)
})

test_that("views of one region share one mapping and one descriptor", {
  skip_without_memfd()
  x <- share(seq_len(1e6) + 0.5)
  nm <- shared_name(x)
  count <- function() {
    c(maps = sum(grepl(memfd_pattern(nm), readLines("/proc/self/maps"))),
      fds = sum(grepl(memfd_pattern(nm), suppressWarnings(Sys.readlink(list.files("/proc/self/fd", full.names = TRUE))))))
  }
  before <- count()
  expect_gte(before[["maps"]], 1)
  expect_lte(before[["fds"]], 1)
  views <- lapply(1:20, function(i) map_shared(nm))
  more <- lapply(1:20, function(i) unserialize(serialize(x, NULL)))
  expect_identical(count(), before)
  expect_identical(sum(shared_regions()$name == nm), 1L)
  expect_identical(views[[20]], x)
  expect_identical(more[[20]], x)
})

test_that("sharing and dropping many regions does not leak descriptors or mappings", {
  full_gc()
  nfd <- function() length(list.files("/proc/self/fd"))
  nmap <- function() sum(grepl("memfd:mori_", readLines("/proc/self/maps")))
  fd0 <- nfd()
  map0 <- nmap()
  for (i in 1:300) {
    s <- share(rnorm(3000))
    m <- map_shared(shared_name(s))
    l <- share(list(a = 1:10, b = rnorm(5000)))
  }
  rm(s, m, l)
  full_gc()
  expect_lte(nfd(), fd0)
  expect_lte(nmap(), map0)
})

test_that("shared_regions() lists mapped regions of other processes as not owned", {
  skip_if_not_installed("callr")
  rs <- callr::r_session$new(callr::r_session_options(libpath = .libPaths()))
  on.exit(rs$close(), add = TRUE)
  nm <- rs$run(function() {
    assign("x", mori::share(rnorm(1e5)), envir = globalenv())
    mori::shared_name(x)
  })
  y <- map_shared(nm)
  row <- shared_regions()[shared_regions()$name == nm, ]
  expect_identical(nrow(row), 1L)
  expect_false(row$owner)
  expect_gte(row$bytes, 8e5)
  rm(y)
  full_gc()
  expect_false(nm %in% shared_regions()$name)
})

test_that("touching many short shared character vectors costs memory in proportion to them", {
  # Each character view keeps a small table of the strings it made; it is
  # sized by the vector's length (it once took ~100 KB per vector).
  anon_mb <- function() {
    l <- grep("^Anonymous:", readLines("/proc/self/smaps_rollup"), value = TRUE)
    as.numeric(gsub("[^0-9]", "", l)) / 1024
  }
  l <- share(lapply(1:2e4, function(i) c("x", paste0("v", i))))
  full_gc()
  before <- anon_mb()
  seconds <- vapply(l, function(e) e[[2]], "")
  grown <- anon_mb() - before
  expect_identical(seconds, paste0("v", 1:2e4))
  expect_lt(grown, 100)
})
