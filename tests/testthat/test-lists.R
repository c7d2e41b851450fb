make_df <- function(n = 1000) {
  set.seed(7)
  df <- data.frame(
    num = rnorm(n),
    int = seq_len(n),
    lgl = rep(c(TRUE, FALSE, NA, TRUE), length.out = n),
    chr = sample(c("apple", "banana", NA, "", "\u00e9t\u00e9"), n, replace = TRUE),
    fac = factor(sample(c("lo", "mid", "hi"), n, replace = TRUE), levels = c("lo", "mid", "hi")),
    date = as.Date("2020-01-01") + seq_len(n),
    time = as.POSIXct("2024-03-10 01:30:00", tz = "America/New_York") + seq_len(n) * 3600,
    stringsAsFactors = FALSE
  )
  df$lst <- I(lapply(seq_len(n), function(i) if (i %% 10 == 0) NULL else seq_len(i %% 4)))
  rownames(df) <- NULL
  df
}

test_that("data frames round-trip identical", {
  df <- make_df()
  s <- share(df)
  expect_identical(s, df)
  expect_identical(attributes(s), attributes(df))
  for (col in names(df)) expect_identical(s[[col]], df[[col]], label = col)
  expect_true(is_shared(s))
  expect_true(is_shared(s$num))
  expect_identical(unserialize(serialize(s, NULL)), df)
  expect_identical(map_shared(shared_name(s)), df)
  # usual data frame operations
  expect_identical(s[s$int > 990, c("num", "fac")], df[df$int > 990, c("num", "fac")])
  expect_identical(summary(s$num), summary(df$num))
  expect_identical(table(s$fac), table(df$fac))
  expect_identical(aggregate(num ~ fac, data = s, FUN = mean), aggregate(num ~ fac, data = df, FUN = mean))
  expect_identical(s[order(s$chr, s$num), ], df[order(df$chr, df$num), ])
  expect_identical(merge(s, s[1:10, c("int", "fac")], by = "int"), merge(df, df[1:10, c("int", "fac")], by = "int"))
  # the data frame of a compact row names form stays the same
  df2 <- data.frame(a = 1:3, row.names = c("x", "y", "z"))
  expect_identical(share(df2), df2)
})

test_that("columns of a shared data frame serialize as short references", {
  df <- data.frame(a = rnorm(1e5), b = seq_len(1e5), f = factor(rep(c("u", "v"), 5e4)))
  s <- share(df)
  expect_lt(length(serialize(s$a, NULL)), 200)
  expect_lt(length(serialize(s$b, NULL)), 200)
  expect_lt(length(serialize(s[["a"]], NULL)), 200)
  f_attrs <- length(serialize(attributes(df$f), NULL))
  expect_lt(length(serialize(s$f, NULL)), 200 + f_attrs)
  expect_lt(length(serialize(s, NULL)), 2000)
  expect_identical(shared_name(s$a), paste0(shared_name(s), "[1]"))
  expect_identical(shared_name(s$f), paste0(shared_name(s), "[3]"))
  expect_identical(map_shared(shared_name(s$b)), df$b)
})

test_that("data frames read right in another process", {
  df <- make_df()
  s <- share(df)
  res <- in_child(function(s, df, name) {
    m <- mori::map_shared(name)
    list(identical = identical(s, df), mapped = identical(m, df),
         col_shared = mori::is_shared(s$num), fac = levels(s$fac), tz = attr(s$time, "tzone"),
         name = mori::shared_name(s$fac), sum = sum(s$num))
  }, list(s = s, df = df, name = shared_name(s)))
  expect_true(res$identical)
  expect_true(res$mapped)
  expect_true(res$col_shared)
  expect_identical(res$fac, c("lo", "mid", "hi"))
  expect_identical(res$tz, "America/New_York")
  expect_identical(res$name, shared_name(s$fac))
  expect_identical(res$sum, sum(df$num))
})

test_that("tibbles round-trip identical", {
  skip_if_not_installed("tibble")
  tb <- tibble::tibble(x = 1:100, y = rnorm(100), z = rep(c("a", NA), 50),
                       l = lapply(1:100, function(i) letters[seq_len(i %% 5)]),
                       d = as.Date("2000-01-01") + 1:100)
  s <- share(tb)
  expect_identical(s, tb)
  expect_s3_class(s, "tbl_df")
  expect_identical(unserialize(serialize(s, NULL)), tb)
  expect_identical(map_shared(shared_name(s)), tb)
  expect_identical(s[2:3, ], tb[2:3, ])
  res <- in_child(function(s, tb) identical(s, tb), list(s = s, tb = tb))
  expect_true(res)
})

test_that("data.tables round-trip identical", {
  skip_if_not_installed("data.table")
  # data.table's `[` syntax needs a calling environment that is
  # data.table-aware: evaluate those calls in the global environment
  dt_eval <- function(expr, ...) eval(substitute(expr), list(...), globalenv())
  dt <- data.table::data.table(a = 1:100, b = rnorm(100), g = rep(c("x", "y"), 50))
  s <- share(dt)
  expect_identical(s, dt)
  expect_s3_class(s, "data.table")
  expect_identical(dt_eval(d[, sum(b), by = g], d = s), dt_eval(d[, sum(b), by = g], d = dt))
  back <- unserialize(serialize(s, NULL))
  expect_identical(dt_eval(d[, sum(b), by = g], d = back), dt_eval(d[, sum(b), by = g], d = dt))
  expect_identical(data.table::rbindlist(list(s, s)), data.table::rbindlist(list(dt, dt)))
  res <- in_child(function(s) {
    library(data.table)
    list(sums = as.data.frame(s[, sum(b), by = g]), names = names(s), cls = class(s))
  }, list(s = s))
  expect_identical(res$sums, as.data.frame(dt_eval(d[, sum(b), by = g], d = dt)))
  expect_identical(res$names, names(dt))
  expect_identical(res$cls, class(dt))
  # adding a column by reference to a copy of the shared table does not touch the region
  s2 <- data.table::copy(s)
  dt_eval(d[, c := a * 2L], d = s2)
  expect_identical(s2$c, dt$a * 2L)
  expect_identical(map_shared(shared_name(s)), dt)
  expect_identical(s, dt)
})

test_that("nested lists, NULL elements and functions inside lists", {
  f <- function(x) x * 2
  e <- new.env()
  l <- list(
    a = 1:3,
    b = list(c = "x", d = list(e = c(u = 1.5), f = NULL, g = TRUE)),
    n = NULL,
    fun = f,
    env = e,
    fm = y ~ x,
    deep = list(list(list(list(as.raw(1:3))))),
    empty = list(),
    mat = matrix(1:4, 2)
  )
  s <- share(l)
  expect_identical(s, l)
  expect_identical(names(s), names(l))
  expect_null(s$n)
  expect_null(s$b$d$f)
  expect_identical(s$fun, f)
  expect_true(identical(environment(s$fun), environment(f)))
  expect_identical(s$fun(2), 4)
  expect_true(identical(s$env, e))
  expect_identical(s$fm, l$fm)
  expect_true(identical(environment(s$fm), environment(l$fm)))
  expect_identical(s$deep[[1]][[1]][[1]][[1]], as.raw(1:3))
  expect_identical(unserialize(serialize(s, NULL))$b, l$b)
  back <- unserialize(serialize(s, NULL))
  expect_identical(back[c("a", "b", "n", "deep", "empty", "mat")], l[c("a", "b", "n", "deep", "empty", "mat")])
  expect_identical(back$fun(3), 6)
  # in another process: values are right, functions are usable copies
  res <- in_child(function(s) {
    list(a = s$a, b = s$b, fun = s$fun(5), deep = s$deep, n = is.null(s$n), names = names(s),
         shared = mori::is_shared(s$a))
  }, list(s = s))
  expect_identical(res$a, 1:3)
  expect_identical(res$b, l$b)
  expect_identical(res$fun, 10)
  expect_identical(res$deep, l$deep)
  expect_true(res$n)
  expect_identical(res$names, names(l))
  # On R < 4.3 a part of a shared list this small (1:3) travels as its
  # values (test-old-r-lists.R); on R >= 4.3 the list is one reference.
  expect_identical(res$shared, getRversion() >= "4.3.0")
})

test_that("shared_name() of an element has a 1-based path and map_shared() returns it", {
  l <- share(list(10, list(20, 30, c(a = 40, b = 41)), list(list("deep"))))
  nm <- shared_name(l)
  sub <- l[[2]][[3]]
  expect_identical(shared_name(sub), paste0(nm, "[2,3]"))
  expect_match(shared_name(sub), "\\[2,3\\]$")
  expect_identical(map_shared(shared_name(sub)), c(a = 40, b = 41))
  expect_identical(shared_name(l[[2]]), paste0(nm, "[2]"))
  expect_identical(map_shared(paste0(nm, "[2]")), list(20, 30, c(a = 40, b = 41)))
  expect_identical(shared_name(l[[3]][[1]][[1]]), paste0(nm, "[3,1,1]"))
  expect_identical(map_shared(paste0(nm, "[3,1,1]")), "deep")
  expect_identical(shared_name(l[[1]]), paste0(nm, "[1]"))
  # in another process
  res <- in_child(function(name) mori::map_shared(name), list(name = shared_name(sub)))
  expect_identical(res, c(a = 40, b = 41))
  # sharing an element again keeps its name
  expect_identical(shared_name(share(sub)), shared_name(sub))
})

test_that("modifying a shared list changes only that list", {
  l <- share(list(a = as.double(1:1e4), b = list(c = 1:3)))
  nm <- shared_name(l)
  y <- map_shared(nm)
  l2 <- l
  l2$a[1] <- 0
  l2$b$c <- "changed"
  l2$new <- 1
  expect_identical(l2$a[1], 0)
  expect_identical(l2$b$c, "changed")
  expect_identical(l$a[1], 1)
  expect_identical(y$a[1], 1)
  expect_identical(y$b$c, 1:3)
  expect_identical(map_shared(nm), list(a = as.double(1:1e4), b = list(c = 1:3)))
  back <- unserialize(serialize(l2, NULL))
  expect_identical(back$a[1:2], c(0, 2))
  expect_identical(back$b$c, "changed")
  expect_identical(back$new, 1)
  expect_identical(in_child(function(name) mori::map_shared(name)$a[1], list(name = nm)), 1)
})

test_that("a list whose element was replaced is no longer shared", {
  l <- share(list(a = 1:5, b = as.double(1:1e4)))
  nm <- shared_name(l)
  l2 <- l
  l2$a <- 6:10 # same type and length, not a view any more
  expect_false(is_shared(l2))
  expect_null(shared_name(l2))
  s2 <- share(l2)
  expect_false(identical(shared_name(s2), nm))
  expect_identical(map_shared(shared_name(s2))$a, 6:10)
  l3 <- l
  l3[["b"]][1] <- 0
  expect_false(is_shared(l3))
  s3 <- share(l3) # held while its name is mapped, or it may be freed before
  expect_identical(map_shared(shared_name(s3))$b[1], 0)
})
