# Untrusted regions: corrupted, truncated and random bytes, and attributes
# that R's setter would refuse, give clean errors or valid objects, never a crash.
# Bigger runs and figures: tools/reliability/ (see its README.md).
# Shared helpers (rel_child(), rel_tag, ...): helper-reliability.R.

test_that("corrupted, truncated and random regions give clean errors or valid objects, never a crash", {
  skip_on_cran()
  skip_if_not_installed("callr")
  lib_file <- test_path("..", "..", "tools", "reliability", "fuzz-lib.R")
  skip_if_not(file.exists(lib_file), "tools/reliability/fuzz-lib.R not available")
  source(lib_file, local = TRUE)
  r <- fz_drive(300, rel_lib(), normalizePath(lib_file), crash_dir = tempdir(), timeout = 120)
  expect_equal(r$cases, 300)
  expect_equal(r$valid + r$errors, 300)
  expect_length(r$crashes, 0)
  expect_gt(r$valid, 10)
  expect_gt(r$errors, 100)
  expect_length(r$internal, 0)
  expect_length(Sys.glob("/dev/shm/mori.fz*"), 0)
})

test_that("a region whose class attribute is not a character vector is refused, not crashed on", {
  skip_on_cran()
  name <- paste0(rel_tag, "_cls")
  on.exit(unlink(file.path("/dev/shm", paste0("mori.", name))), add = TRUE)
  res <- rel_child(c(
    sprintf("x <- share(as.Date('2024-01-01') + 0:9, name = '%s')", name),
    sprintf("p <- '/dev/shm/mori.%s'; b <- readBin(p, 'raw', file.size(p)); unshare('%s')", name, name),
    "b[128 + 64 * 2 + 1] <- as.raw(13)", # the class value node: character -> integer
    "fnv <- function(b) { lo <- 0x84222325; hi <- 0xcbf29ce4; for (v in as.integer(b)) { l8 <- lo %% 256; lo <- lo - l8 + bitwXor(as.integer(l8), v); t <- lo * 435; nlo <- t %% 2^32; hi <- (hi * 435 + (t - nlo) / 2^32 + (lo %% 2^24) * 256) %% 2^32; lo <- nlo }; c(lo, hi) }",
    "nc <- readBin(b[25:28], 'integer', size = 4, endian = 'little'); h <- fnv(c(b[1:120], b[129:(128 + 64 * nc)]))",
    "b[121:128] <- as.raw(c(floor(h[1] / 256^(0:3)) %% 256, floor(h[2] / 256^(0:3)) %% 256))",
    "writeBin(b, p)",
    sprintf("r <- tryCatch({ y <- map_shared('%s'); capture.output(str(y)); 'ok' }, error = function(e) 'error')", name),
    "unlink(p); cat('RESULT', r, '\\n')"
  ))
  expect_equal(res$status, 0L)
  expect_true(any(grepl("RESULT", res$out)))
})

test_that("a region whose dim attribute does not match its length is refused", {
  skip_on_cran()
  name <- paste0(rel_tag, "_dim")
  on.exit(unlink(file.path("/dev/shm", paste0("mori.", name))), add = TRUE)
  res <- rel_child(c(
    sprintf("x <- share(matrix(as.double(1:12), 3, 4), name = '%s')", name),
    sprintf("p <- '/dev/shm/mori.%s'; b <- readBin(p, 'raw', file.size(p))", name),
    "pat <- as.raw(c(3, 0, 0, 0, 4, 0, 0, 0))",
    "s <- which(vapply(seq_len(length(b) - 7), function(i) all(b[i:(i + 7)] == pat), TRUE))",
    "b[s + 4:7] <- writeBin(50000000L, raw(), endian = 'little')",
    "Sys.chmod(p, '600'); writeBin(b, p)",
    sprintf("r <- tryCatch({ y <- map_shared('%s'); sum(y %%*%% rep(1, 5e7)); 'accepted' }, error = function(e) 'error')", name),
    sprintf("unshare('%s'); cat('RESULT', r, '\\n')", name)
  ))
  expect_equal(res$status, 0L)
  expect_true(any(grepl("RESULT error", res$out)))
})

# Attributes are set through R's setter (R's API has no other way), which
# signals an R error on what it refuses; such regions are refused first, with
# mori's own error.
rel_patched_attribute <- function(suffix, make, from, to) {
  name <- paste0(rel_tag, suffix)
  on.exit(unlink(file.path("/dev/shm", paste0("mori.", name))), add = TRUE)
  rel_child(c(
    sprintf("x <- share(%s, name = '%s')", make, name),
    sprintf("p <- '/dev/shm/mori.%s'; b <- readBin(p, 'raw', file.size(p)); unshare('%s')", name, name),
    sprintf("from <- %s; to <- %s", from, to),
    "s <- which(vapply(seq_len(length(b) - length(from) + 1), function(i) all(b[i - 1 + seq_along(from)] == from), TRUE))",
    "stopifnot(length(s) == 1); b[s - 1 + seq_along(to)] <- to; writeBin(b, p)",
    sprintf("r <- tryCatch({ y <- map_shared('%s'); capture.output(print(y)); 'accepted' }, error = function(e) conditionMessage(e))", name),
    "unlink(p); cat('RESULT', r, '\\n')"
  ))
}

test_that("a region whose class says factor on a double vector is refused", {
  skip_on_cran()
  res <- rel_patched_attribute("_fct", "structure(as.double(1:10), class = 'fxctor')",
                               "charToRaw('fxctor')", "charToRaw('factor')")
  expect_equal(res$status, 0L)
  expect_true(any(grepl("RESULT .*corrupt.*class", res$out)), info = paste(res$out, collapse = "\n"))
})

test_that("a region whose tsp does not fit the series' length is refused", {
  skip_on_cran()
  for (case in list(c(2000, 2019, 1), c(2000, 2009, 0), c(2000, 2009, -1))) {
    res <- rel_patched_attribute("_tsp", "ts(as.double(1:10) + 0.5, start = 2000)",
                                 "writeBin(c(2000, 2009, 1), raw(), endian = 'little')",
                                 sprintf("writeBin(c(%s), raw(), endian = 'little')", toString(case)))
    expect_equal(res$status, 0L)
    expect_true(any(grepl("RESULT .*corrupt.*tsp", res$out)), info = paste(res$out, collapse = "\n"))
  }
  # a matrix series: the rows, not the length, must fit
  res <- rel_patched_attribute("_tsm", "ts(matrix(as.double(1:20) + 0.5, 10, 2), start = 2000)",
                               "writeBin(c(2000, 2009, 1), raw(), endian = 'little')",
                               "writeBin(c(2000, 2019, 1), raw(), endian = 'little')")
  expect_true(any(grepl("RESULT .*corrupt.*tsp", res$out)), info = paste(res$out, collapse = "\n"))
})

test_that("a region whose attribute lists form a cycle gives a clean error, not a stack overflow", {
  skip_on_cran()
  name <- paste0(rel_tag, "_cyc")
  on.exit(unlink(file.path("/dev/shm", paste0("mori.", name))), add = TRUE)
  res <- rel_child(c(
    sprintf("x <- share(matrix(as.double(1:12), 3, 4, dimnames = list(letters[1:3], LETTERS[1:4])), name = '%s')", name),
    sprintf("p <- '/dev/shm/mori.%s'; b <- readBin(p, 'raw', file.size(p)); unshare('%s')", name, name),
    "u32 <- function(at) readBin(b[at + 1:4], 'integer', size = 4, endian = 'little')",
    "nc <- u32(24); root_attrs <- u32(128 + 4)",
    # the dimnames list (a list node inside the root's attribute list) gets
    # the root's attribute list as its own attributes: a cycle
    "dn <- Filter(function(k) as.integer(b[128 + 64 * k + 1]) == 19 && u32(128 + 64 * k + 48) == root_attrs, seq_len(nc) - 1)[1]",
    "b[128 + 64 * dn + 5:8] <- writeBin(root_attrs, raw(), size = 4, endian = 'little')",
    "fnv <- function(b) { lo <- 0x84222325; hi <- 0xcbf29ce4; for (v in as.integer(b)) { l8 <- lo %% 256; lo <- lo - l8 + bitwXor(as.integer(l8), v); t <- lo * 435; nlo <- t %% 2^32; hi <- (hi * 435 + (t - nlo) / 2^32 + (lo %% 2^24) * 256) %% 2^32; lo <- nlo }; c(lo, hi) }",
    "h <- fnv(c(b[1:120], b[129:(128 + 64 * nc)]))",
    "b[121:128] <- as.raw(c(floor(h[1] / 256^(0:3)) %% 256, floor(h[2] / 256^(0:3)) %% 256))",
    "writeBin(b, p)",
    sprintf("r <- tryCatch({ y <- map_shared('%s'); 'accepted' }, error = function(e) 'error')", name),
    "unlink(p); cat('RESULT', r, '\\n')"
  ))
  expect_equal(res$status, 0L)
  expect_true(any(grepl("RESULT error", res$out)))
})
