test_that("shared_info describes a shared vector without making its strings", {
  x <- share(as.character(1:1e5))
  info <- shared_info(x)
  expect_s3_class(info, "mori_info")
  expect_true(info$shared)
  expect_identical(info$name, shared_name(x))
  expect_identical(info$type, "character")
  expect_identical(info$length, 1e5L)
  expect_identical(info$made, 0)
  text <- format(info)
  expect_match(text[1], "^<shared character, 100,000 elements>$")
  expect_match(text, "0 of 100,000 strings made in this process", all = FALSE, fixed = TRUE)
  expect_output(print(info), "<shared character", fixed = TRUE)
  # describing and printing the description made nothing
  expect_identical(shared_info(x)$made, 0)
  invisible(x[[7]])
  invisible(x[100:109])
  expect_identical(shared_info(x)$made, 11)
  expect_match(format(shared_info(x)), "11 of 100,000 strings", all = FALSE, fixed = TRUE)
})

test_that("shared_info reports the region, slices, private pages and plain objects", {
  d <- share(as.double(1:1e5))
  info <- shared_info(d)
  expect_identical(info$bytes, 8e5)
  expect_identical(info$region$name, shared_name(d))
  expect_true(info$region$owner)
  expect_false(info$region$published)
  expect_gte(info$region$bytes, 8e5)
  expect_false(info$private)
  expect_match(format(info), "read in place", all = FALSE, fixed = TRUE)
  # C code asking for a writable pointer (c() does) gets private
  # copy-on-write pages; nothing is written, so the view is unchanged
  invisible(c(d, recursive = TRUE))
  info <- shared_info(d)
  expect_true(info$private)
  expect_false(info$modified)
  expect_true(is_shared(d))
  expect_match(format(info), "private copy-on-write pages, unchanged", all = FALSE, fixed = TRUE)

  s <- share(as.double(1:1e6))[1:5e5]
  expect_match(shared_info(s)$name, "@1:500000$")
  expect_identical(shared_info(s)$bytes, 4e6)

  plain <- shared_info(1:3)
  expect_false(plain$shared)
  expect_null(plain$region)
  expect_identical(format(plain), "<not shared: integer, 3 elements>")

  df <- share(data.frame(a = 1:3, b = c("x", "y", "z")))
  expect_true(shared_info(df)$shared)
  expect_match(format(shared_info(df))[1], "^<shared list data.frame, 2 elements>$")
  expect_match(shared_info(df$b)$name, "\\[2\\]$")

  nm <- paste0("info_", Sys.getpid())
  p <- share(1:10, name = nm)
  on.exit(unshare(nm), add = TRUE)
  expect_true(shared_info(p)$region$published)
  expect_match(format(shared_info(p)), ", published", all = FALSE, fixed = TRUE)
})

# The views' fast reads of R's object fields have an API fallback for an R
# whose layout differs; MORI_CHECKED_FIELDS=1 at load forces it (CI runs the
# suite once that way: R-4.2-checked).
field_reads_workout <- function() {
  strings <- rep(c("a", "b", NA, "", "\u00e9"), 2000)
  lists <- rep(list(1:3, "z", NULL, list(a = 1)), 2000)
  s <- mori::share(strings)
  l <- mori::share(lists)
  c(path = mori:::field_reads(),
    compare = identical(s == "a", strings == "a"),
    subset = identical(s[c(5, 1, 9999)], strings[c(5, 1, 9999)]),
    strings = identical(s, strings),
    match = identical(match(strings, s), match(strings, strings)),
    lists = identical(l, lists),
    elements = identical(lapply(l, length), lapply(lists, length)))
}

test_that("MORI_CHECKED_FIELDS=1 at load switches the views to the checked field reads, with the same results", {
  checked_here <- tolower(Sys.getenv("MORI_CHECKED_FIELDS")) %in% c("1", "true")
  here <- field_reads_workout()
  expect_identical(here[["path"]], if (checked_here) "checked" else "direct")
  expect_true(all(as.logical(here[-1])), info = paste(names(here), here, collapse = " "))
  skip_on_cran()
  skip_if_not_installed("callr")
  for (setting in c("1", "true", "0", "")) {
    there <- callr::r(field_reads_workout, libpath = .libPaths(),
                      env = c(callr::rcmd_safe_env(), MORI_CHECKED_FIELDS = setting))
    expect_identical(there[["path"]], if (setting %in% c("1", "true")) "checked" else "direct")
    expect_true(all(as.logical(there[-1])), info = paste(setting, names(there), there, collapse = " "))
  }
})
