# Elements of shared lists edited in place by C code (data.table's set(),
# setattr(), setnames(), setkey()) are never lost: the edited element, the
# list holding it and the lists holding that stop claiming to be shared and
# serialize the edited values. On R >= 4.3 a shared list is one ALTREP view
# whose elements are made on first touch and cached: the edits happen to a
# cached element without the list's Set_elt seeing them. On R 4.2 a shared
# list is a plain list of views: checked the same way.

# data.table's self-reference attribute is an external pointer, which no
# copy (serialize, another process) reproduces: compare without it.
strip_selfref <- function(x) {
  if (is.list(x)) {
    attr(x, ".internal.selfref") <- NULL
    for (i in seq_along(x)) if (is.list(x[[i]])) x[[i]] <- strip_selfref(x[[i]])
  }
  x
}
same_value <- function(a, b) identical(strip_selfref(a), strip_selfref(b))

# Serializes each object here and unserializes it in one fresh process,
# which compares it with the expected (plain) value there.
received_equal <- function(objects, expected) {
  bytes <- lapply(objects, serialize, connection = NULL)
  in_child(function(bytes, expected, strip_src) {
    strip_selfref <- eval(parse(text = strip_src))
    vapply(seq_along(bytes), function(i) {
      got <- unserialize(bytes[[i]])
      identical(strip_selfref(got), strip_selfref(expected[[i]]))
    }, logical(1))
  }, list(bytes = bytes, expected = expected, strip_src = paste(deparse(strip_selfref), collapse = "\n")))
}

# Each case: the shared object after an in-place edit, the plain value it
# must equal, and elements (by path) that must still be shared.
check_cases <- function(cases) {
  for (name in names(cases)) {
    case <- cases[[name]]
    expect_true(same_value(case$shared, case$expected), label = paste(name, ": owner's value"))
    expect_false(is_shared(case$shared), label = paste(name, ": is_shared()"))
    expect_null(shared_name(case$shared), label = paste(name, ": shared_name()"))
    for (path in case$unshared) {
      expect_false(is_shared(case$shared[[path]]), label = paste(name, ": edited part", paste(path, collapse = ",")))
    }
    for (path in case$still_shared) {
      expect_true(is_shared(case$shared[[path]]), label = paste(name, ": untouched part", paste(path, collapse = ",")))
    }
  }
  ok <- received_equal(lapply(cases, `[[`, "shared"), lapply(cases, `[[`, "expected"))
  for (i in seq_along(ok)) expect_true(ok[[i]], label = paste(names(cases)[i], ": value in another process"))
}

test_that("data.table::set() on a column of a shared data.table, in a list or not", {
  skip_if_not_installed("data.table")
  set <- data.table::set
  dt <- function(n) data.table::data.table(a = as.double(seq_len(n)), b = seq_len(n), g = rep_len(c("x", "y"), n))
  cases <- list()

  # Large columns (private copy-on-write pages) and small ones (heap copies).
  for (n in c(10, 5000)) {
    s <- share(list(dt = dt(n), v = 1:10))
    set(s$dt, i = 2L, j = "a", value = 99)
    e <- list(dt = dt(n), v = 1:10)
    e$dt$a[2] <- 99
    cases[[paste0("set in list, n = ", n)]] <- list(shared = s, expected = e, unshared = list("dt", c(1, 1)),
                                                  still_shared = list("v", c(1, 2), c(1, 3)))
  }

  d <- share(dt(5000))
  set(d, i = 3L, j = "b", value = 0L)
  e <- dt(5000)
  e$b[3] <- 0L
  cases[["set on a shared data.table"]] <- list(shared = d, expected = e, unshared = list("b"),
                                              still_shared = list("a", "g"))

  # A whole column replaced (data.table plonks the new vector in).
  s <- share(list(dt = dt(100), v = 1:10))
  set(s$dt, j = "b", value = 100:1)
  e <- list(dt = dt(100), v = 1:10)
  e$dt$b <- 100:1
  cases[["set a whole column"]] <- list(shared = s, expected = e, unshared = list("dt", c(1, 2)),
                                        still_shared = list("v", c(1, 1)))

  # A character column, in a data.frame three lists down.
  s <- share(list(a = list(b = list(df = data.frame(x = c("p", "q", "r"), y = 1:3)), keep = letters)))
  set(s$a$b$df, i = 1L, j = "x", value = "changed")
  e <- list(a = list(b = list(df = data.frame(x = c("changed", "q", "r"), y = 1:3)), keep = letters))
  cases[["set three lists down"]] <- list(shared = s, expected = e,
                                          unshared = list(1, c(1, 1), c(1, 1, 1), c(1, 1, 1, 1)),
                                          still_shared = list(c(1, 2), c(1, 1, 1, 2)))
  check_cases(cases)
})

test_that("setattr() and setnames() on elements of a shared list", {
  skip_if_not_installed("data.table")
  setattr <- data.table::setattr
  setnames <- data.table::setnames
  cases <- list()

  for (x in list(1:10, as.double(1:5000), letters, c(TRUE, NA), list(1, "a"))) {
    s <- share(list(x = x, y = 1:3))
    setattr(s$x, "foo", "bar")
    e <- list(x = x, y = 1:3)
    attr(e$x, "foo") <- "bar"
    cases[[paste("setattr on a", typeof(x), "element of length", length(x))]] <-
      list(shared = s, expected = e, unshared = list("x"), still_shared = list("y"))
  }

  # An element's existing attribute replaced, and removed.
  s <- share(list(f = factor(c("a", "b", "a")), y = 1:3))
  setattr(s$f, "levels", c("A", "B"))
  e <- list(f = factor(c("A", "B", "A")), y = 1:3)
  cases[["setattr replaces levels"]] <- list(shared = s, expected = e, unshared = list("f"), still_shared = list("y"))

  s <- share(list(m = matrix(1:6, 2, dimnames = list(c("r1", "r2"), NULL)), y = 1:3))
  setattr(s$m, "dimnames", NULL)
  e <- list(m = matrix(1:6, 2), y = 1:3)
  cases[["setattr removes dimnames"]] <- list(shared = s, expected = e, unshared = list("m"), still_shared = list("y"))

  # Names changed in place: a vector element's names replaced, a data
  # frame's names rewritten inside the same names vector (setnames), small
  # (a plain names vector) and wide (names of over 64 columns are a view).
  s <- share(list(x = c(a = 1, b = 2), y = 1:3))
  setattr(s$x, "names", c("p", "q"))
  cases[["setattr names of an element"]] <- list(shared = s, expected = list(x = c(p = 1, q = 2), y = 1:3),
                                                 unshared = list("x"), still_shared = list("y"))

  s <- share(list(inner = list(df = data.frame(a = 1:3, b = 4:6)), keep = 1:3))
  setnames(s$inner$df, "a", "z")
  e <- list(inner = list(df = data.frame(z = 1:3, b = 4:6)), keep = 1:3)
  cases[["setnames on a nested data frame"]] <- list(shared = s, expected = e,
                                                     unshared = list("inner", c(1, 1)),
                                                     still_shared = list("keep", c(1, 1, 1), c(1, 1, 2)))

  wide <- as.data.frame(setNames(as.list(seq_len(100)), paste0("col", seq_len(100))))
  s <- share(list(df = wide, keep = 1:3))
  setnames(s$df, "col50", "renamed")
  e <- list(df = wide, keep = 1:3)
  names(e$df)[50] <- "renamed"
  cases[["setnames on a 100-column frame"]] <- list(shared = s, expected = e, unshared = list("df"),
                                                    still_shared = list("keep", c(1, 50)))

  # The shared list's own names, changed in place.
  s <- share(list(a = 1:3, b = letters))
  setattr(s, "names", c("x", "y"))
  cases[["setattr names of the list itself"]] <- list(shared = s, expected = list(x = 1:3, y = letters),
                                                      still_shared = list(1, 2))
  check_cases(cases)
})

test_that("setkey() on a data.table held in a shared list", {
  skip_if_not_installed("data.table")
  make <- function() data.table::data.table(k = c(3L, 1L, 2L), v = c("c", "a", "b"), w = c(30, 10, 20))
  s <- share(list(dt = make(), other = 1:5))
  data.table::setkey(s$dt, k)
  e <- list(dt = data.table::data.table(k = 1:3, v = c("a", "b", "c"), w = c(10, 20, 30), key = "k"), other = 1:5)
  check_cases(list(setkey = list(shared = s, expected = e, unshared = list("dt", c(1, 1), c(1, 2)),
                                 still_shared = list("other"))))
})

test_that("attr<- on an element taken by [[ copies it and leaves the list shared", {
  for (x in list(1:10, as.double(1:5000), letters, list(1, "a"), data.frame(a = 1:3))) {
    s <- share(list(x = x, y = 1:3))
    el <- s[["x"]]
    attr(el, "extra") <- "yes"
    names(el) <- toupper(names(el))
    expect_true(is_shared(s))
    expect_identical(s, share(s))
    expect_identical(s$x, x)
    expect_false(is_shared(el))
    expected <- x
    attr(expected, "extra") <- "yes"
    names(expected) <- toupper(names(expected))
    expect_identical(el, expected)
    expect_identical(received_equal(list(s, el), list(list(x = x, y = 1:3), expected)), c(TRUE, TRUE))
  }
})

test_that("touching every element of a shared list leaves it shared, as one reference", {
  skip_if_not_installed("data.table")
  s <- share(list(dt = data.table::data.table(a = as.double(1:5000), b = letters[rep_len(1:3, 5000)]),
                  l = list(1:3, list("deep")), f = factor(c("u", "v"))))
  invisible(lapply(s, function(e) if (is.list(e)) lapply(e, identity) else e))
  invisible(sum(s$dt$a) + nchar(s$dt$b[1]) + length(s$l[[2]][[1]]))
  expect_true(is_shared(s))
  expect_true(is_shared(s$dt))
  expect_false(isTRUE(shared_info(s)$modified))
  expect_lt(length(serialize(s, NULL)), 5000)
})
