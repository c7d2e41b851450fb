test_that("shared_name() has the documented form and is NULL for unshared objects", {
  x <- share(c(1, 2, 3))
  nm <- shared_name(x)
  expect_type(nm, "character")
  expect_length(nm, 1)
  # A small region is packed: its pack's name and its offset in the pack.
  expect_match(nm, "^/mori_[0-9a-f]+_[0-9a-f]+_[0-9a-f]+[+][0-9a-f]+$")
  expect_match(shared_name(share(rnorm(1e4))), "^/mori_[0-9a-f]+_[0-9a-f]+_[0-9a-f]+$")
  pid <- strtoi(sub("^/mori_([0-9a-f]+)_.*$", "\\1", nm), 16L)
  expect_identical(pid, Sys.getpid())
  expect_null(shared_name(c(1, 2, 3)))
  expect_null(shared_name(NULL))
  expect_null(shared_name(mean))
  expect_null(shared_name(nm))
  # two shares of the same value are two regions
  expect_false(identical(shared_name(share(c(1, 2, 3))), nm))
})

test_that("malformed names give NULL", {
  x <- share(as.double(1:10))
  good <- shared_name(x)
  bad <- list(
    NULL, 1, 1L, TRUE, NA, 3.5, list(good), as.name("x"), mean,
    character(0), c(good, good), c("/mori_1_1_1", "/mori_2_2_2"),
    NA_character_, "",
    "mori_1_1_1", "/moro_1_1_1", "/x_1_1_1", "mori", "/mori_", "/mori_1_1", "/mori_1_1_1_1",
    "/mori_0_1_1", "/mori_1A_1_1", "/mori_01_1_1", "/mori_g_1_1", "/mori_-1_1_1",
    "/mori_1_1_1[0]", "[a]", "[2,3]", "/mori_1_1_1[]", "/mori_1_1_1[", "/mori_1_1_1[1,]",
    "/mori_1_1_1[a]", "/mori_1_1_1[-1]", "/mori_1_1_1[1]x", "/mori_1_1_1]", "/mori_1_1_1#",
    "/mori_1_1_1#-1", "/mori_1_1_1#x",
    "/../etc/passwd", "/mori_1_1_1/../x", "../mori_1_1_1", "/dev/shm/mori_1_1_1",
    "/mori_1_1_1 ", " /mori_1_1_1", "/mori_1_1_1\n", "/mori_1_1_1;rm -rf", "/mori_1_1_1\t",
    "/mori_\u00e9_1_1", "/mori_1_1_ffffffff", "/mori_100000000_1_1",
    paste0(good, "junk"), paste0("junk", good), toupper(good), sub("^/", "", good),
    strrep("a", 1e6), paste0("/mori_", strrep("f", 1e5), "_1_1"),
    paste0("/mori_1_1_1[", strrep("1,", 5000), "1]"), strrep("/mori_1_1_1", 1000)
  )
  for (i in seq_along(bad)) {
    b <- bad[[i]]
    lab <- paste0("bad name #", i, ": ", substr(paste(deparse(b), collapse = ""), 1, 60))
    expect_null(map_shared(b), label = lab)
  }
  # the good name still works after all that
  expect_identical(map_shared(good), as.double(1:10))
})

test_that("a well-formed name whose region is gone is a 'not found' error", {
  # a region made by a child that has exited
  nm <- in_child(function() {
    x <- mori::share(rnorm(1e4))
    mori::shared_name(x)
  })
  expect_match(nm, "^/mori_[0-9a-f]+_[0-9a-f]+_[0-9a-f]+$")
  expect_error(map_shared(nm), "not found", class = "mori_error_not_found")
  expect_error(map_shared(paste0(nm, "[1]")), "not found")
  # a region of this process that was dropped
  x <- share(rnorm(1e4))
  gone <- shared_name(x)
  rm(x)
  full_gc()
  expect_error(map_shared(gone), "not found", class = "mori_error_not_found")
  # a serial this process never used, and a process that does not exist
  parts <- strsplit(sub("^/mori_", "", gone), "_")[[1]]
  never <- sprintf("/mori_%s_%x_%s", parts[1], 1e6, parts[3])
  expect_error(map_shared(never), "not found", class = "mori_error_not_found")
  expect_error(map_shared("/mori_7ffffffe_1_3"), "not found")
  expect_error(map_shared("/mori_7ffffffe_1_3[2,3]"), "not found")
})

test_that("a name with the right pid and fd but another serial is not found", {
  x <- share(rnorm(1e4))
  nm <- shared_name(x)
  parts <- strsplit(sub("^/mori_", "", nm), "_")[[1]]
  serial <- strtoi(parts[2], 16L)
  wrong <- sprintf("/mori_%s_%x_%s", parts[1], serial + 1000L, parts[3])
  expect_error(map_shared(wrong), "not found", class = "mori_error_not_found")
  # consumer side: same check in another process
  expect_match(child_map_error(wrong), "not found")
  expect_identical(child_map_error(nm), "")
})

test_that("map_shared() of an element path returns that element, and bad paths fail", {
  l <- share(list(1:3, list("a", c(x = 2.5), NULL), letters))
  nm <- shared_name(l)
  expect_identical(map_shared(paste0(nm, "[1]")), 1:3)
  expect_identical(map_shared(paste0(nm, "[2,2]")), c(x = 2.5))
  expect_identical(map_shared(paste0(nm, "[2,1]")), "a")
  expect_identical(map_shared(paste0(nm, "[3]")), letters)
  expect_error(map_shared(paste0(nm, "[4]")), "out of bounds", class = "mori_error_bad_path")
  expect_error(map_shared(paste0(nm, "[2,7]")), "out of bounds", class = "mori_error_bad_path")
  expect_error(map_shared(paste0(nm, "[1,1]")), "not a nested list", class = "mori_error_bad_path")
})

test_that("a gone region whose descriptor number now holds a socket is 'not found'", {
  x <- share(rnorm(1e5))
  nm <- shared_name(x)
  fd <- file.path("/proc/self/fd", strtoi(sub("^.*_([0-9a-f]+)$", "\\1", nm), 16L))
  rm(x)
  full_gc()
  # fill the lowest free descriptors with sockets until the region's old
  # number holds one
  socks <- list()
  on.exit(for (s in socks) close(s), add = TRUE)
  port <- 40000L + Sys.getpid() %% 20000L
  link <- function() {
    l <- suppressWarnings(Sys.readlink(fd))
    if (is.na(l)) "" else l
  }
  for (i in 1:64) {
    if (startsWith(link(), "socket:")) break
    if (nzchar(link())) skip("the descriptor number was reused by something else")
    socks[[i]] <- serverSocket(port + i)
  }
  expect_match(link(), "^socket:")
  expect_error(map_shared(nm), "not found", class = "mori_error_not_found")
  expect_match(child_map_error(nm), "not found")
})

test_that("R code reads names through the one parser: base and memory file", {
  x <- share(list(a = as.double(1:1e5), b = list(c = 2))) # large: a memory file of its own, not a pack
  base <- shared_name(x)
  parts <- mori:::name_parts(base)
  expect_identical(unname(parts[["base"]]), base)
  expect_match(parts[["file"]], "^mori_[0-9a-f]+_[0-9a-f]+$")
  expect_true(startsWith(base, paste0("/", parts[["file"]], "_")))
  for (suffix in c("[2]", "[2,1]", "#3", "@1:5", "[1]@2:3")) {
    expect_identical(mori:::name_parts(paste0(base, suffix)), parts, info = suffix)
  }
  expect_identical(unname(mori:::name_parts("pub.name_1[2]@1:3")), c("pub.name_1", ""))
  for (bad in list("junk!", "/mori_0_1_2", "/mori_01_1_2", paste0(base, "[0]"), paste0(base, "@3:1"),
                   "", NA_character_, c("a", "b"), 1, NULL)) {
    expect_null(mori:::name_parts(bad))
  }
})

test_that("sizes are written in one convention, decimal units, in R as in messages", {
  f <- mori:::format_bytes
  expect_identical(f(0), "0 bytes")
  expect_identical(f(999), "999 bytes")
  expect_identical(f(1000L), "1.0 kB")
  expect_identical(f(1.5e6), "1.5 MB")
  expect_identical(f(2^31), "2.1 GB")
  expect_identical(f(3e12), "3.0 TB")
  for (bad in list(-1, NA_real_, NA_integer_, Inf, "1", 1:2, NULL)) {
    expect_error(f(bad), class = "mori_error_bad_argument")
  }
  # the figure shared_info() prints is this one
  d <- share(as.double(1:1e5))
  expect_match(format(shared_info(d)), "800.0 kB in the region", all = FALSE, fixed = TRUE)
})
