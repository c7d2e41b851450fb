# Each mutation is applied to a fresh shared object `x`; `y` is another view of
# the same region taken before the mutation. After it, x has the new value,
# y and another process still read the original, x serializes its new value
# and is no longer shared.

cow_check <- function(orig, mutate, label, check_identity = TRUE) {
  x <- share(orig)
  nm <- shared_name(x)
  y <- map_shared(nm)
  z <- x # a second reference in this process
  expected <- mutate(orig)
  x <- mutate(x)
  expect_identical(x, expected, label = paste(label, "mutated value"))
  expect_false(identical(expected, orig), label = paste(label, "mutation changes something"))
  expect_identical(y, orig, label = paste(label, "earlier view unchanged"))
  expect_identical(z, orig, label = paste(label, "other reference unchanged"))
  expect_identical(map_shared(nm), orig, label = paste(label, "new view unchanged"))
  if (check_identity) {
    expect_false(is_shared(x), label = paste(label, "is_shared after mutation"))
    expect_null(shared_name(x), label = paste(label, "shared_name after mutation"))
  }
  expect_true(is_shared(y), label = paste(label, "earlier view still shared"))
  expect_identical(unserialize(serialize(x, NULL)), expected, label = paste(label, "serializes new values"))
  expect_identical(unserialize(serialize(y, NULL)), orig, label = paste(label, "view serializes original"))
  list(x = x, y = y, name = nm)
}

value_mutations <- list(
  first = function(v) { v[1] <- 0; v },
  last = function(v) { v[length(v)] <- -1; v },
  all = function(v) { v[] <- rev(v); v },
  double_bracket = function(v) { v[[2]] <- 42; v },
  grow = function(v) { v[length(v) + 1] <- 7; v }
)

attribute_mutations <- list(
  attr_new = function(v) { attr(v, "extra") <- "yes"; v },
  attr_drop = function(v) { attributes(v) <- NULL; v },
  names = function(v) { names(v) <- paste0("z", seq_along(v)); v },
  names_first = function(v) { names(v)[1] <- "z"; v },
  dim = function(v) { dim(v) <- c(length(v), 1L); v },
  class = function(v) { class(v) <- "foo"; v }
)

big_dbl <- function() setNames(as.double(seq_len(1e5)), NULL) # > 16 KB: private mapping
small_dbl <- function() c(a = 1, b = 2, c = 3) # <= 16 KB: heap copy

test_that("value mutations of shared atomic vectors copy on write", {
  for (m in names(value_mutations)) {
    cow_check(big_dbl(), value_mutations[[m]], paste("big", m))
    cow_check(small_dbl(), value_mutations[[m]], paste("small", m))
  }
})

test_that("attribute mutations of shared atomic vectors change only the mutated object", {
  named_big <- setNames(as.double(1:5000), paste0("n", 1:5000))
  for (m in names(attribute_mutations)) {
    cow_check(small_dbl(), attribute_mutations[[m]], paste("small", m), check_identity = FALSE)
    cow_check(named_big, attribute_mutations[[m]], paste("named big", m), check_identity = FALSE)
  }
})

test_that("an object whose attributes were changed is no longer shared", {
  for (orig in list(small_dbl(), structure(big_dbl(), foo = "bar"), setNames(as.double(1:5000), paste0("n", 1:5000)))) {
    for (m in names(attribute_mutations)) {
      x <- share(orig)
      nm <- shared_name(x)
      x <- attribute_mutations[[m]](x)
      expect_false(is_shared(x), label = m)
      expect_null(shared_name(x), label = m)
      s <- share(x)
      expect_false(identical(shared_name(s), nm), label = m)
      expect_identical(map_shared(shared_name(s)), x, label = m)
    }
  }
})

test_that("copy on write works for every atomic type", {
  cases <- list(
    int = seq_len(1e5) + 0L, lgl = rep(c(TRUE, FALSE), 5e4),
    raw = as.raw(rep(1:200, 500)), cplx = complex(real = 1:1e4, imaginary = 2),
    int_small = 1:5, raw_small = as.raw(1:5), lgl_small = c(NA, TRUE),
    factor = factor(c("a", "b", "b")), matrix = matrix(1:1e4, 100)
  )
  for (nm in names(cases)) {
    cow_check(cases[[nm]], function(v) { v[2] <- v[1]; v }, paste(nm, "[2] <- [1]"))
    cow_check(cases[[nm]], function(v) { v[] <- rev(v); v }, paste(nm, "[] <- rev"))
  }
  cow_check(cases$factor, function(v) { levels(v) <- c("A", "B"); v }, "levels", check_identity = FALSE)
  cow_check(cases$matrix, function(v) { v[1, ] <- 0L; v }, "matrix row")
  cow_check(cases$matrix, function(v) { dimnames(v) <- list(NULL, paste0("c", 1:100)); v }, "dimnames",
            check_identity = FALSE)
})

test_that("mutating an object with a single reference still copies on write", {
  # no other R reference: R may modify x in place through a writable pointer
  x <- share(as.double(1:1e5))
  nm <- shared_name(x)
  y <- map_shared(nm)
  x[1] <- 0
  x[5e4] <- -5
  expect_identical(x[c(1, 2, 5e4)], c(0, 2, -5))
  expect_identical(y[c(1, 2, 5e4)], c(1, 2, 5e4))
  expect_identical(map_shared(nm), as.double(1:1e5))
  expect_false(is_shared(x))
  expect_true(is_shared(y))
  expect_identical(in_child(function(name) mori::map_shared(name)[c(1, 5e4)], list(name = nm)), c(1, 5e4))
  expect_identical(unserialize(serialize(x, NULL))[c(1, 2, 5e4)], c(0, 2, -5))
  # in a child, it reads the mutated values, not the region
  expect_identical(in_child(function(v) v[c(1, 2, 5e4)], list(v = x)), c(0, 2, -5))

  # writes through C code asking for a writable pointer (e.g. in-place ops)
  s <- share(seq_len(1e5) + 0L)
  nm2 <- shared_name(s)
  t <- map_shared(nm2)
  s[1:10] <- 0L
  expect_identical(s[1:11], c(rep(0L, 10), 11L))
  expect_identical(t[1:11], 1:11)
})

test_that("another process still reads the original after a mutation here", {
  orig <- rnorm(1e5)
  x <- share(orig)
  nm <- shared_name(x)
  x[1] <- 99
  x[] <- x * 2
  attr(x, "foo") <- "bar"
  res <- in_child(function(name) {
    y <- mori::map_shared(name)
    list(y = y, attrs = attributes(y))
  }, list(name = nm))
  expect_identical(res$y, orig)
  expect_null(res$attrs)
  expect_identical(x[2], orig[2] * 2)
})

test_that("a mutation in another process does not show here", {
  orig <- as.double(1:1e5)
  x <- share(orig)
  res <- in_child(function(x, name) {
    x[1] <- -1
    y <- mori::map_shared(name)
    y[] <- 0
    names(x)[1] <- "a"
    list(x1 = x[[1]], y_sum = sum(y), fresh = mori::map_shared(name)[1:2])
  }, list(x = x, name = shared_name(x)))
  expect_identical(res$x1, -1)
  expect_identical(res$y_sum, 0)
  expect_identical(res$fresh, c(1, 2))
  expect_identical(x, orig)
  expect_identical(map_shared(shared_name(x)), orig)
})

test_that("share() is idempotent and a mutated object is shared into a new region", {
  x <- share(rnorm(1e4))
  nm <- shared_name(x)
  expect_identical(shared_name(share(x)), nm)
  expect_identical(shared_name(share(share(x))), nm)
  expect_identical(shared_name(share(map_shared(nm))), nm)
  expect_identical(shared_name(unserialize(serialize(share(x), NULL))), nm)
  full_gc() # earlier tests' garbage would release regions during the count
  n_regions <- nrow(shared_regions())
  invisible(share(x))
  expect_identical(nrow(shared_regions()), n_regions)

  x2 <- x
  x2[1] <- 0
  s2 <- share(x2)
  expect_true(is_shared(s2))
  expect_false(identical(shared_name(s2), nm))
  expect_identical(s2, x2)
  expect_identical(map_shared(shared_name(s2))[1], 0)
  expect_identical(map_shared(nm)[1], x[1])

  x3 <- x
  attr(x3, "a") <- 1
  s3 <- share(x3)
  expect_false(identical(shared_name(s3), nm))
  expect_identical(attr(map_shared(shared_name(s3)), "a"), 1)
  expect_null(attr(map_shared(nm), "a"))

  # idempotent for lists too
  l <- share(list(a = 1:3, b = list(c = "x")))
  expect_identical(shared_name(share(l)), shared_name(l))
  expect_identical(shared_name(share(l$b)), shared_name(l$b))
})
