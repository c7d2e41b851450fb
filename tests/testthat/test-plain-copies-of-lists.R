# A plain list R makes of a shared list's elements (`lapply(x, identity)`,
# `unclass()` of a data frame view on R 4.2, data.table's shallow copy)
# holds exactly what the list node holds: it reads as shared, and share()
# gives back the node itself, which travels as one reference where lists
# are ALTREP (R >= 4.3). Any change to it makes it an ordinary object.

big <- function(n = 5e4) list(a = as.double(seq_len(n)), b = rev(seq_len(n)), s = rep_len(c("x", "y"), n))

test_that("a plain list of a shared list's elements reads as that list", {
  s <- share(big())
  y <- lapply(s, identity)
  expect_true(is_shared(y))
  expect_identical(shared_name(y), shared_name(s))
  again <- share(y)
  expect_identical(again, s)
  expect_identical(shared_name(again), shared_name(s))
  # One reference for the list, not one per element.
  if (getRversion() >= "4.3.0") {
    expect_lt(length(serialize(again, NULL)), length(serialize(y, NULL)) / 2)
  }
})

test_that("a nested list's plain copy reads as its node, with its path", {
  s <- share(list(p = 1:3, inner = big()))
  y <- lapply(s$inner, identity)
  expect_true(is_shared(y))
  expect_identical(shared_name(y), shared_name(s$inner))
  expect_match(shared_name(y), "\\[2\\]$")
  expect_identical(share(y), s$inner)
})

test_that("a plain copy that differs from the node in any way is not shared", {
  s <- share(big())
  variants <- list(
    element_changed = within(lapply(s, identity), a[1] <- 0),
    element_replaced = replace(lapply(s, identity), "b", list(rev(s$b))),
    element_dropped = lapply(s, identity)[1:2],
    reordered = lapply(s, identity)[c(2, 1, 3)],
    renamed = setNames(lapply(s, identity), c("a", "b", "z")),
    attribute_added = structure(lapply(s, identity), extra = 1),
    unnamed = unname(lapply(s, identity)),
    element_of_another = c(lapply(s, identity)[1:2], list(s = share(big()$s)))
  )
  for (v in names(variants)) {
    x <- variants[[v]]
    expect_false(is_shared(x), label = v)
    expect_null(shared_name(x), label = v)
    shared_again <- share(x)
    expect_identical(shared_again, x, label = v)
    expect_false(identical(shared_name(shared_again), shared_name(s)), label = v)
  }
})

test_that("NULL and functions ahead of the first shared element, and what ends the search", {
  f <- function(x) x + 1
  n <- 5e4
  s <- share(list(NULL, f, a = as.double(seq_len(n)), b = rev(seq_len(n))))
  y <- lapply(s, identity)
  expect_true(is_shared(y))
  expect_identical(shared_name(y), shared_name(s))
  expect_identical(share(y), s)
  # Ahead of the first shared element, anything but NULL or a stored
  # object makes an ordinary list, even when equal to the node's value.
  ahead <- list(
    plain_copy_of_first = replace(y, "a", list(as.double(seq_len(n)))),
    vector_for_null = replace(y, 1, list(0)),
    list_for_null = replace(y, 1, list(list())),
    null_for_function = replace(y, 2, list(NULL)),
    nested_plain_list = replace(y, 1, list(list(1, s$a)))
  )
  for (v in names(ahead)) {
    expect_false(is_shared(ahead[[v]]), label = v)
    expect_null(shared_name(ahead[[v]]), label = v)
  }
})

test_that("a plain copy whose function or environment was replaced is not shared", {
  # Each replacement is a non-vector, as the stored one is: share() of the
  # copy must keep it, not give back the node with the original.
  make_adder <- function(k) function(x) x + k
  e <- new.env()
  e$v <- 1
  n <- 5e4
  s <- share(list(f = make_adder(1), g = function(x) x * 2, e = e, a = as.double(seq_len(n))))
  y <- lapply(s, identity)
  expect_true(is_shared(y))
  replaced <- list(
    other_body = replace(y, "g", list(function(x) x * 3)),
    same_body_other_env = replace(y, "f", list(make_adder(2))),
    other_environment = replace(y, "e", list(new.env())),
    global_environment = replace(y, "e", list(globalenv())),
    formula = replace(y, "g", list(~ x))
  )
  for (v in names(replaced)) {
    x <- replaced[[v]]
    expect_false(is_shared(x), label = v)
    again <- share(x)
    expect_false(identical(shared_name(again), shared_name(s)), label = v)
    expect_identical(again$f(10), x$f(10), label = v)
    expect_identical(again$g, x$g, label = v)
    expect_identical(again$e, x$e, label = v)
  }
  # An element's attribute changed from 0 to -0: equal under ==, but not
  # the stored value (identical() is asked to compare doubles bitwise).
  t <- share(list(v = structure(as.double(seq_len(n)), a = 0), w = seq_len(n)))
  p <- lapply(t, identity)
  attr(p$v, "a") <- -0
  expect_false(is_shared(p))
  expect_identical(1 / attr(share(p)$v, "a"), -Inf)
  # Another process: the copy a worker makes of the list it received reads
  # as shared while its stored elements are as restored, and not once one
  # is replaced. (`s` stays reachable until the child has mapped it.)
  skip_if_not_installed("callr")
  plain <- share(list(h = sum, ge = globalenv(), a = as.double(seq_len(n))))
  got <- callr::r(function(ref, plain) {
    s <- unserialize(ref)
    y <- lapply(s, identity)
    z <- replace(y, "f", list(function(x) x - 1))
    p <- lapply(unserialize(plain), identity)
    list(copy = mori::is_shared(y), replaced = mori::is_shared(z),
         kept = mori::share(z)$f(10), plain = mori::is_shared(p),
         plain_replaced = mori::is_shared(replace(p, "h", list(max))))
  }, args = list(ref = serialize(s, NULL), plain = serialize(plain, NULL)), libpath = .libPaths())
  expect_true(is_shared(s) && is_shared(plain))
  expect_false(got$replaced)
  expect_identical(got$kept, 9)
  # A builtin and the global environment restore as themselves: identical.
  expect_true(got$plain)
  expect_false(got$plain_replaced)
  # A restored closure has an environment of its own (a copy of
  # make_adder's), so that copy is judged changed: a false "no" only costs
  # a new share.
  expect_false(got$copy)
})
