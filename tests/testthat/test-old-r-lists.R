# Sharing never makes a payload larger than the plain object's. On R < 4.3
# a shared list is an ordinary list of views, serialized element by element:
# a part (element or attribute value) whose values take no more bytes than
# its reference travels as its values; larger parts stay references.

old_r_list_cases <- function() {
  set.seed(31)
  frame <- data.frame(a = rnorm(2e4), b = sample.int(100L, 2e4, TRUE), g = sample(letters[1:5], 2e4, TRUE))
  list_col <- data.frame(id = sample.int(1e6, 2e3))
  list_col$l <- as.list(sample.int(1e6, 2e3))
  list(
    frames = split(frame, rep(seq_len(4e3), each = 5)),
    list_col = list_col,
    records = lapply(seq_len(2e3), function(i) list(id = i * 2L, name = paste0("r", i), score = c(x = i / 3))),
    strings = lapply(seq_len(2e3), function(i) c("a", NA, strrep("b", i %% 7))),
    mixed = list(small = c(1.5, 2.5), big = rnorm(1e4), named = c(a = 1L, b = 2L), chars = letters),
    factors = lapply(1:500, function(i) factor(c("lo", "hi", "lo"), levels = c("lo", "hi")))
  )
}

test_that("a shared list's payload is never larger than the plain list's", {
  for (nm in names(cases <- old_r_list_cases())) {
    plain <- cases[[nm]]
    s <- share(plain)
    expect_lte(length(serialize(s, NULL)), length(serialize(plain, NULL)), label = nm)
    expect_lte(length(serialize(s, NULL, xdr = FALSE)), length(serialize(plain, NULL, xdr = FALSE)), label = nm)
    expect_identical(unserialize(serialize(s, NULL)), plain, label = nm)
  }
})

test_that("small parts travel as values, large ones as references, in another process too", {
  s <- share(old_r_list_cases()$mixed)
  back <- unserialize(serialize(s, NULL))
  expect_identical(back, old_r_list_cases()$mixed)
  expect_true(is_shared(back$big))
  expect_identical(shared_name(back$big), shared_name(s$big))
  old_r <- getRversion() < "4.3.0"
  # letters (26 strings) is larger than its reference: still one.
  expect_true(is_shared(back$chars))
  expect_identical(is_shared(back$small), !old_r)
  expect_identical(is_shared(back$named), !old_r)
  res <- in_child(function(s) {
    list(values = s, shared = vapply(s, mori::is_shared, logical(1)))
  }, list(s = s))
  expect_identical(res$values, old_r_list_cases()$mixed)
  expect_identical(res$shared, c(small = !old_r, big = TRUE, named = !old_r, chars = TRUE))
})

test_that("a data frame with a list column of integers travels at its plain size", {
  d <- old_r_list_cases()$list_col
  s <- share(d)
  size <- length(serialize(s, NULL))
  expect_lte(size, length(serialize(d, NULL)))
  got <- in_child(function(s) list(s, mori::is_shared(s$id)), list(s = s))
  expect_identical(got[[1]], d)
  expect_true(got[[2]])
})

test_that("the list's own shared object (not a part) stays a reference however small", {
  x <- share(c(1.5, 2.5))
  back <- unserialize(serialize(x, NULL))
  expect_true(is_shared(back))
  expect_identical(shared_name(back), shared_name(x))
})
