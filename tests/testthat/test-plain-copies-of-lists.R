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
