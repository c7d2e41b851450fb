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

# Shares `make` in a child, published under a name ending in `suffix`,
# changes the file's bytes `b` with the R lines `patch` (the helpers of
# region_bytes_code() at hand), writes them back, maps the name again and
# evaluates `use` on the object, `y`. Returns rel_child()'s result, whose
# line "RESULT ..." says "accepted" or the error's class and message.
rel_patched_region <- function(suffix, make, patch, use = "NULL") {
  name <- paste0(rel_tag, suffix)
  on.exit(unlink(file.path("/dev/shm", paste0("mori.", name))), add = TRUE)
  rel_child(c(
    region_bytes_code(),
    sprintf("x <- share(%s, name = '%s')", make, name),
    sprintf("p <- '/dev/shm/mori.%s'; b <- region_read(p); unshare('%s')", name, name),
    patch,
    # planted 0400, as a sealed region (a POSIX shm reader refuses others)
    "writeBin(b, p); Sys.chmod(p, '400')",
    sprintf("r <- tryCatch({ y <- map_shared('%s'); %s; 'accepted' }, error = function(e) paste(class(e)[1], conditionMessage(e)))",
            name, use),
    "unlink(p); cat('RESULT', r, '\\n')"
  ))
}

test_that("a region whose class attribute is not a character vector is refused, not crashed on", {
  skip_on_cran()
  res <- rel_patched_region("_cls", "as.Date('2024-01-01') + 0:9", c(
    "stopifnot(region_get(b, 'node.kind', node = 2) == 16)", # the class value node
    "b <- region_reseal(region_set(b, 'node.kind', 13, node = 2))" # character -> integer
  ), use = "capture.output(str(y))")
  expect_equal(res$status, 0L)
  expect_true(any(grepl("^RESULT ", res$out)), info = paste(res$out, collapse = "\n"))
})

test_that("a region whose dim attribute does not match its length is refused", {
  skip_on_cran()
  res <- rel_patched_region("_dim", "matrix(as.double(1:12), 3, 4)", c(
    "pat <- as.raw(c(3, 0, 0, 0, 4, 0, 0, 0))",
    "s <- which(vapply(seq_len(length(b) - 7), function(i) all(b[i:(i + 7)] == pat), TRUE))",
    "b[s + 4:7] <- writeBin(50000000L, raw(), endian = 'little')"
  ), use = "sum(y %*% rep(1, 5e7))")
  expect_equal(res$status, 0L)
  expect_true(any(grepl("^RESULT mori_error_corrupt ", res$out)), info = paste(res$out, collapse = "\n"))
})

# Attributes are set through R's setter (R's API has no other way), which
# signals an R error on what it refuses; such regions are refused first, with
# mori's own error.
rel_patched_attribute <- function(suffix, make, from, to) {
  rel_patched_region(suffix, make, c(
    sprintf("from <- %s; to <- %s", from, to),
    "s <- which(vapply(seq_len(length(b) - length(from) + 1), function(i) all(b[i - 1 + seq_along(from)] == from), TRUE))",
    "stopifnot(length(s) == 1); b[s - 1 + seq_along(to)] <- to"
  ), use = "capture.output(print(y))")
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
  res <- rel_patched_region("_cyc", "matrix(as.double(1:12), 3, 4, dimnames = list(letters[1:3], LETTERS[1:4]))", c(
    "nc <- region_get(b, 'header.node_count'); root_attrs <- region_get(b, 'node.attrs', node = 0)",
    # the dimnames list (a list node inside the root's attribute list) gets
    # the root's attribute list as its own attributes: a cycle
    "dn <- Filter(function(k) region_get(b, 'node.kind', node = k) == 19 && region_get(b, 'node.parent', node = k) == root_attrs, seq_len(nc) - 1)[1]",
    "stopifnot(!is.na(dn))",
    "b <- region_reseal(region_set(b, 'node.attrs', root_attrs, node = dn))"
  ))
  expect_equal(res$status, 0L)
  expect_true(any(grepl("^RESULT mori_error_corrupt ", res$out)), info = paste(res$out, collapse = "\n"))
})

test_that("the byte helpers read the fields a region was written with and reseal it exactly", {
  skip_on_cran()
  name <- paste0(rel_tag, "_rb")
  x <- share(c(a = 1.5, b = 2.5, c = NA), name = name)
  on.exit(unshare(name), add = TRUE)
  b <- region_read(file.path("/dev/shm", paste0("mori.", name)))
  # the checksum recomputed from the field table is the one mori wrote
  expect_identical(region_reseal(b), b)
  expect_equal(region_get(b, "header.total_size"), length(b))
  expect_equal(region_get(b, "header.creator_pid"), Sys.getpid())
  expect_equal(region_get(b, "header.header_size"), region_header_size())
  expect_gte(region_get(b, "header.node_count"), 2) # the vector and its names
  expect_identical(rawToChar(b[region_at("header.name") + seq_len(nchar(name))]), name)
  expect_equal(region_get(b, "node.kind", node = 0), 14) # double
  expect_equal(region_get(b, "node.length", node = 0), 3)
  expect_equal(region_get(b, "node.data_len", node = 0), 24)
  names_list <- region_get(b, "node.attrs", node = 0)
  expect_equal(region_get(b, "node.kind", node = names_list), 19) # the attribute list
  # an edit changes the checksum; the round trip through region_set is exact
  edited <- region_set(b, "node.length", 4, node = 0)
  expect_equal(region_get(edited, "node.length", node = 0), 4)
  expect_false(identical(region_reseal(edited)[region_at("header.checksum") + 1:8],
                         b[region_at("header.checksum") + 1:8]))
  expect_identical(region_reseal(region_set(edited, "node.length", 3, node = 0)), b)
  big <- region_set(b, "node.data_off", c(4294967295, 1), node = 0)
  expect_equal(region_get(big, "node.data_off", node = 0), 2 * 4294967296 - 1)
})
