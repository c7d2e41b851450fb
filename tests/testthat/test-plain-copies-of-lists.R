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
