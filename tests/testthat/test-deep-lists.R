# Deeply nested and wide shared lists: is_shared(), shared_name(),
# shared_info() and share() of an already-shared list take time linear in
# the object's size (on R < 4.3 a shared list is a plain list of views, and
# asking each element's identity twice made the walk exponential in the
# depth: 0.4 s at depth 23, hours at depth 40).

# A chain `depth` lists deep around `leaf`.
chain <- function(depth, leaf = 1) {
  x <- leaf
  for (i in seq_len(depth)) x <- list(x)
  x
}

# A complete tree: every list has `width` elements, the first `width - 1`
# of them lists (down to `depth`), the last a small named vector; leaves are
# integer vectors.
tree <- function(depth, width = 3) {
  if (depth == 0) return(1:3)
  c(lapply(seq_len(width - 1), function(i) tree(depth - 1, width)), list(c(a = depth)))
}

# Runs `fun` in a fresh process with a time limit: without linear walks the
# child never finishes, and the limit turns that into a test failure.
in_child_limited <- function(fun, args = list(), timeout = 60) {
  skip_if_not_installed("callr")
  callr::r(fun, args = args, libpath = .libPaths(), timeout = timeout)
}

test_that("a shared list 1000 deep is recognised, named and reshared at once", {
  res <- in_child_limited(function() {
    library(mori)
    x <- 1
    for (i in 1:1000) x <- list(x)
    s <- share(x)
    name <- shared_name(s)
    info <- shared_info(s)
    again <- share(s)
    leaf <- s
    for (i in 1:1000) leaf <- leaf[[1]]
    mid <- s
    for (i in 1:500) mid <- mid[[1]]
    list(
      shared = is_shared(s), name = name, info_shared = info$shared, info_name = info$name,
      again_same = identical(again, s), again_name = shared_name(again),
      leaf = leaf, leaf_shared = is_shared(leaf), leaf_name = shared_name(leaf),
      mid_shared = is_shared(mid), mid_name = shared_name(mid),
      mapped_leaf = map_shared(shared_name(leaf)),
      mapped_mid_same = identical(map_shared(shared_name(mid)), mid)
    )
  })
  expect_true(res$shared)
  expect_match(res$name, "^/mori_[0-9a-f]+_[0-9a-f]+_[0-9a-f]+$")
  expect_true(res$info_shared)
  expect_identical(res$info_name, res$name)
  expect_true(res$again_same)
  expect_identical(res$again_name, res$name)
  expect_identical(res$leaf, 1)
  expect_true(res$leaf_shared)
  expect_identical(res$leaf_name, paste0(res$name, "[", paste(rep("1", 1000), collapse = ","), "]"))
  expect_true(res$mid_shared)
  expect_identical(res$mid_name, paste0(res$name, "[", paste(rep("1", 500), collapse = ","), "]"))
  expect_identical(res$mapped_leaf, 1)
  expect_true(res$mapped_mid_same)
})

test_that("an edit at the deepest level of a 1000-deep shared list unshares it", {
  res <- in_child_limited(function() {
    library(mori)
    x <- 1
    for (i in 1:1000) x <- list(x)
    s <- share(x)
    edited <- s
    edited[[rep(1L, 1000)]] <- 2
    reshared <- share(edited)
    leaf <- reshared
    for (i in 1:1000) leaf <- leaf[[1]]
    list(
      edited_shared = is_shared(edited), edited_name = shared_name(edited),
      edited_info = shared_info(edited)$shared, original_shared = is_shared(s),
      reshared_shared = is_shared(reshared),
      reshared_new = !identical(shared_name(reshared), shared_name(s)),
      leaf = leaf,
      # The edit reaches another process whole.
      through_serialize = unserialize(serialize(edited, NULL))[[rep(1L, 1000)]]
    )
  })
  expect_false(res$edited_shared)
  expect_null(res$edited_name)
  expect_false(res$edited_info)
  expect_true(res$original_shared)
  expect_true(res$reshared_shared)
  expect_true(res$reshared_new)
  expect_identical(res$leaf, 2)
  expect_identical(res$through_serialize, 2)
})

test_that("wide and deep shared trees: identity, paths, edits", {
  res <- in_child_limited(function(tree_src) {
    library(mori)
    tree <- eval(parse(text = tree_src))
    x <- tree(9) # 3^9 lists of 3: about 30,000 nodes
    s <- share(x)
    name <- shared_name(s)
    # An element deep in the middle: path 2,1,2,1,2,1,2,1 (1-based).
    path <- rep(c(2L, 1L), 4)
    node <- s[[path]]
    deepest_path <- c(rep(2L, 8), 1L)
    edited <- s
    edited[[deepest_path]] <- 4:6
    renamed <- s
    names(renamed[[path]]) <- c("p", "q", "r")
    list(
      shared = is_shared(s), same_again = identical(share(s), s),
      value_same = identical(s, x), name = name,
      node_name = shared_name(node), node_value = node, node_expected = x[[path]],
      mapped = identical(map_shared(shared_name(node)), x[[path]]),
      edited_shared = is_shared(edited), edited_sub = is_shared(edited[[2]]),
      untouched_sibling = is_shared(edited[[1]]),
      renamed_shared = is_shared(renamed), renamed_node_shared = is_shared(renamed[[path]]),
      renamed_other_shared = is_shared(renamed[[1]])
    )
  }, list(tree_src = paste(deparse(tree), collapse = "\n")))
  expect_true(res$shared)
  expect_true(res$same_again)
  expect_true(res$value_same)
  expect_identical(res$node_name, paste0(res$name, "[2,1,2,1,2,1,2,1]"))
  expect_identical(res$node_value, res$node_expected)
  expect_true(res$mapped)
  expect_false(res$edited_shared)
  expect_false(res$edited_sub)
  expect_true(res$untouched_sibling)
  expect_false(res$renamed_shared)
  expect_false(res$renamed_node_shared)
  expect_true(res$renamed_other_shared)
})

test_that("NULL and stored elements ahead of the first shared one", {
  f <- function(x) x + 1
  s <- share(list(NULL, f, list(NULL, f, chain(12, 1:3)), 4:6))
  expect_true(is_shared(s))
  expect_true(is_shared(s[[3]]))
  expect_match(shared_name(s[[3]][[3]]), "\\[3,3\\]$")
  # Ahead of the first shared element, a plain vector where the region has
  # a vector: not shared.
  a <- s
  a[[3]][[3]] <- chain(12, 1:3) # plain copy of the value, not the view
  expect_false(is_shared(a))
  expect_false(is_shared(a[[3]]))
  expect_true(is_shared(a[[4]]))
  b <- s
  b[1] <- list(1)
  expect_false(is_shared(b))
  expect_null(shared_name(b))
})
