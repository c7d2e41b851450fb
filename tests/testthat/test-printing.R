# Printed output, pinned by snapshots: shared objects print, format and str()
# exactly as the originals do; shared_info() and shared_regions() describe a
# region in words that do not change unnoticed; the errors users meet most
# keep their wording.

# Snapshots must not depend on this process: region names carry its id, a
# serial and a descriptor; creation times vary.
scrub_print <- function(lines) {
  lines <- gsub("/mori_[0-9a-f]+_[0-9a-f]+_[0-9a-f]+", "/mori_<pid>_<serial>_<fd>", lines)
  lines <- gsub(sprintf("prt%x", Sys.getpid()), "<tag>", lines, fixed = TRUE)
  gsub("[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}", "<time>", lines)
}

print_cases <- function() {
  list(
    doubles = c(1.5, NA, -Inf, 1e10, pi),
    named_integers = c(a = 1L, b = NA, c = 3L),
    factor = factor(c("lo", "hi", NA, "lo"), levels = c("lo", "hi")),
    strings = c("a", NA, "caf\u00e9", ""),
    matrix = matrix(as.double(1:6), 2, dimnames = list(c("r1", "r2"), c("A", "B", "C"))),
    date = as.Date("2024-02-29") + 0:2,
    data_frame = data.frame(x = 1:3, y = c("p", "q", "r"), z = c(0.5, NA, 2)),
    nested_list = list(a = 1:3, b = list(c = "x", d = c(TRUE, NA)))
  )
}

test_that("shared objects print, format and str() exactly as the originals", {
  for (what in names(print_cases())) {
    x <- print_cases()[[what]]
    s <- share(x)
    expect_identical(capture.output(print(s)), capture.output(print(x)), info = what)
    expect_identical(capture.output(str(s)), capture.output(str(x)), info = what)
    expect_identical(format(s), format(x), info = what)
  }
  expect_snapshot({
    s <- lapply(print_cases(), share)
    print(s$doubles)
    print(s$named_integers)
    print(s$factor)
    print(s$strings)
    print(s$matrix)
    print(s$date)
    print(s$data_frame)
    str(s$data_frame)
    str(s$nested_list)
    format(s$doubles)
  })
})

test_that("a long shared vector prints as a long plain one, and a slice as its values", {
  x <- as.double(1:1e5)
  s <- share(x)
  expect_identical(capture.output(print(s)), capture.output(print(x)))
  expect_snapshot({
    print(head(s, 12))
    print(s[99995:1e5])
    str(s)
  })
})

test_that("shared_info() of vectors: region, data, strings made, private pages", {
  expect_snapshot({
    chr <- share(as.character(1:1e5))
    print(shared_info(chr))
    invisible(chr[1:10])
    print(shared_info(chr))
    dbl <- share(as.double(1:1e5))
    print(shared_info(dbl))
    invisible(c(dbl, recursive = TRUE)) # C code asks for a writable pointer
    print(shared_info(dbl))
    print(shared_info(share(as.double(1:1e6))[1:5e5]))
    print(shared_info(1:3))
  }, transform = scrub_print)
})

test_that("shared_info() of a published region and of a data frame", {
  nm <- sprintf("prt%x_pub", Sys.getpid())
  on.exit(unshare(nm), add = TRUE)
  p <- share(c(a = 1, b = 2), name = nm)
  expect_snapshot(print(shared_info(p)), transform = scrub_print)
  # lists are ALTREP views only from R 4.3, and small ones are packed: the
  # description's later lines differ by version; its first does not
  text <- format(shared_info(share(data.frame(a = 1:3, b = c("x", "y", "z")))))
  expect_identical(text[1], "<shared list data.frame, 2 elements>")
  expect_match(text[2], "^  name:   /mori_[0-9a-f]+_[0-9a-f]+_[0-9a-f]+")
})

test_that("shared_regions() lists a region in the same columns", {
  x <- share(as.double(1:1e4))
  r <- shared_regions()
  row <- r[r$name == shared_name(x), , drop = FALSE]
  expect_identical(row$views, 1L)
  row$name <- "<name>" # its width varies with the process id
  row$created <- NA
  rownames(row) <- NULL
  expect_snapshot(print(row))
})

test_that("the errors met most keep their wording", {
  show <- function(expr) {
    e <- tryCatch({
      force(expr)
      NULL
    }, error = identity)
    if (is.null(e)) cat("no error\n") else cat("<", class(e)[1], ">\n", conditionMessage(e), "\n", sep = "")
  }
  expect_snapshot({
    # a reference saved with saveRDS() whose region is gone
    f <- tempfile(fileext = ".rds")
    local(saveRDS(share(as.double(1:1e5)), f))
    invisible(gc(full = TRUE))
    show(readRDS(f))
    # not mori names: NULL, no error
    print(map_shared("not a name"))
    print(map_shared("/mori_0_1_2"))
    show(share(1, name = "mori_x"))
  }, transform = scrub_print)
})
