lists_are_altrep <- function() getRversion() >= "4.3.0"

views_of <- function(name) {
  r <- shared_regions()
  r$views[r$name == name]
}

test_that("a worker that uses 3 of 100 columns maps only those columns' pages", {
  skip_on_cran()
  skip_if_not_installed("callr")
  df <- as.data.frame(matrix(rnorm(100 * 1e5), ncol = 100))
  sdf <- share(df)
  ref <- serialize(sdf, NULL)
  res <- callr::r(function(ref) {
    library(mori)
    x <- unserialize(ref)
    opened <- memory_usage()$shared_rss
    used <- vapply(x[c(3, 50, 97)], function(column) mean(column * 1), numeric(1))
    list(opened = opened, used = memory_usage()$shared_rss, means = used)
  }, args = list(ref = ref), libpath = .libPaths())
  column_mb <- 1e5 * 8 / 2^20
  expect_equal(res$means, vapply(df[c(3, 50, 97)], mean, numeric(1)), ignore_attr = TRUE)
  # Opening reads the header and node table only, not the 76 MB of data.
  expect_lt(res$opened, 2)
  # Three columns' pages, not a hundred.
  expect_lt(res$used, 3 * column_mb + 2)
  expect_gt(res$used, 3 * column_mb * 0.9)
})

test_that("ALTREP lists build elements only when touched (R >= 4.3)", {
  skip_if(!lists_are_altrep(), "lists can be ALTREP only on R >= 4.3")
  l <- lapply(seq_len(1e6), function(i) c(i, i + 0.5))
  s <- share(l)
  name <- shared_name(s)
  expect_equal(views_of(name), 1L)              # the list itself
  expect_identical(s[[5]], c(5, 5.5))
  expect_equal(views_of(name), 2L)              # ... and the one element touched
  # The whole list of a million vectors travels as one short reference.
  expect_lt(length(serialize(s, NULL)), 300)
  y <- unserialize(serialize(s, NULL))
  expect_identical(y[[999999]], c(999999, 999999.5))
  expect_true(is_shared(s[[7]]))
  expect_lt(length(serialize(s[[7]], NULL)), 200)
  expect_identical(shared_name(s[[7]]), paste0(name, "[7]"))
})

test_that("a 1000-column shared data frame serializes in under 1 KB plus its names (R >= 4.3)", {
  skip_if(!lists_are_altrep(), "lists can be ALTREP only on R >= 4.3")
  df <- as.data.frame(matrix(rnorm(1000 * 100), ncol = 1000))
  s <- share(df)
  expect_identical(s, df)
  names_bytes <- length(serialize(names(df), NULL))
  expect_lt(length(serialize(s, NULL)), 1024 + names_bytes)
  # lapply() over it sends one reference per column.
  expect_true(all(vapply(s[1:20], function(col) length(serialize(col, NULL)) < 200, logical(1))))
})

test_that("editing an ALTREP list gives a private copy and leaves the region as it was (R >= 4.3)", {
  skip_if(!lists_are_altrep(), "lists can be ALTREP only on R >= 4.3")
  original <- list(a = 1:3, b = "x", c = list(d = 4))
  s <- share(original)
  name <- shared_name(s)
  s[[2]] <- "changed"
  expect_identical(s$b, "changed")
  expect_false(is_shared(s))
  s$new <- 1
  expect_identical(s$new, 1)
  s[["a"]] <- NULL
  expect_identical(names(s), c("b", "c", "new"))
  expect_identical(map_shared(name), original)
  # A modified list serializes its values, not the reference.
  expect_identical(unserialize(serialize(s, NULL)), s)
})

test_that("an element keeps its region alive after the list is dropped", {
  s <- share(list(a = rnorm(1e4), b = letters))
  name <- shared_name(s)
  b <- s$b
  rm(s)
  gc()
  expect_identical(b, letters)
  expect_identical(map_shared(name)$b, letters)
  rm(b)
  gc()
  expect_error(map_shared(name), "not found", class = "mori_error_not_found")
})
