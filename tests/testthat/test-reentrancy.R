# A view's methods can be re-entered: R calls a method of view `x` while
# another method of `x` runs (`x[x]`: Extract_subset of `x` reads the index
# vector `x` through its Get_region/Elt methods; making an element
# allocates, and a collection may run finalizers that read the same view).
# The Rust side hands out only shared references to a view, whose state is
# interior (Cell/OnceCell/RefCell borrowed for a lookup only): these calls
# must give exactly what the same calls on plain copies give, for every
# class, small and large (the gather and the zero-copy slice paths), on
# R 4.2 and on R >= 4.3 (lists as ALTREP views).

# f(shared) gives what f(plain copy) gives: the same value, or the same
# error (R refuses NA subscripts in assignments either way).
same_as_plain <- function(shared, f, label) {
  plain <- materialize(shared)
  run <- function(v) tryCatch(f(v), error = function(e) paste("error:", conditionMessage(e)))
  expect_identical(run(shared), run(plain), label = label)
}

# Index vectors that are their own valid indices, so x[x] selects.
index_vectors <- function() {
  n_big <- 40000L # 160 KB of integers: above the zero-copy slice limit
  list(
    small_int = c(3L, 1L, 2L, 2L, 5L, 4L),
    consecutive_int = seq_len(n_big),
    scattered_int = rev(seq_len(n_big)),
    with_na_and_outside = c(2L, NA, 7L, 1L, 100L, 3L, 4L),
    small_double = c(2, 1, 3.7, 3),
    consecutive_double = as.double(seq_len(n_big)),
    scattered_double = as.double(sample.int(n_big))
  )
}

test_that("x[x] and nested subsets of a view read the view while it is being read", {
  for (nm in names(index_vectors())) {
    x <- share(index_vectors()[[nm]])
    same_as_plain(x, function(v) v[v], paste(nm, "x[x]"))
    same_as_plain(x, function(v) v[v][v], paste(nm, "x[x][x]"))
    same_as_plain(x, function(v) v[v[v]], paste(nm, "x[x[x]]"))
    same_as_plain(x, function(v) v[rev(v)], paste(nm, "x[rev(x)]"))
    same_as_plain(x, function(v) head(v, 20000)[v[seq_len(min(5L, length(v)))]], paste(nm, "slice[x]"))
    same_as_plain(x, function(v) { v[v] <- v; v }, paste(nm, "x[x] <- x"))
    same_as_plain(x, function(v) { v[v[1]] <- v[2]; v }, paste(nm, "x[x[1]] <- x[2]"))
    same_as_plain(x, function(v) match(v, v), paste(nm, "match(x, x)"))
    same_as_plain(x, function(v) order(v, v), paste(nm, "order(x, x)"))
    expect_true(is_shared(x), label = paste(nm, "still shared after the edits of copies"))
  }
})

test_that("every class of view survives operations that read it twice at once", {
  n <- 5000L
  values <- list(
    logical = rep_len(c(TRUE, FALSE, NA, TRUE), n),
    integer = seq_len(n),
    double = seq_len(n) / 7,
    complex = complex(real = seq_len(n), imaginary = -seq_len(n)),
    raw = as.raw(seq_len(n) %% 256),
    character = paste0("s", seq_len(n) %% 97),
    list = lapply(seq_len(300), function(i) if (i %% 3 == 0) NULL else seq_len(i %% 7))
  )
  ops <- list(
    `x[x == x[1]]` = function(v) v[vapply(seq_along(v), function(i) identical(v[[i]], v[[1]]), TRUE)],
    `c(x, x)` = function(v) c(v, v),
    `rev(x)` = function(v) rev(v),
    `x[length(x):1][x[1:2] == x[1:2]]` = function(v) v[length(v):1][vapply(1:2, function(i) identical(v[[i]], v[[i]]), TRUE)],
    `identical(x, x)` = function(v) identical(v, v),
    `Map(identical, x, x)` = function(v) unlist(Map(identical, v, v)),
    `x[[x[[...]]]]` = function(v) v[[length(v) - 1L]],
    `duplicate then edit` = function(v) { w <- v; w[1] <- v[2]; list(v, w) },
    `unique(x)` = function(v) unique(v)
  )
  for (type in names(values)) {
    x <- share(values[[type]])
    for (op in names(ops)) same_as_plain(x, ops[[op]], paste(type, op))
    expect_true(is_shared(x), label = paste(type, "still shared"))
  }
})

test_that("a character view used as its own names and subscripts", {
  x <- share(paste0("k", 1:5000))
  same_as_plain(x, function(v) { names(v) <- v; v[v[c(3, 1, 4000)]] }, "names(x) <- x; x[x[i]]")
  same_as_plain(x, function(v) match(v, rev(v)), "match(x, rev(x))")
  same_as_plain(x, function(v) v %in% v[seq(1, 5000, by = 7)], "x %in% x[i]")
  same_as_plain(x, function(v) sort(v), "sort(x)")
})

test_that("re-entered methods stay sound while every allocation collects", {
  skip_on_cran()
  x <- share(c(3L, 1L, 2L, 2L))
  s <- share(c("a", "b", "a", NA))
  l <- share(list(1:3, "a", list(2, "b")))
  # Finalizers that read the same views, run by the collections below.
  for (i in 1:3) {
    e <- new.env()
    reg.finalizer(e, function(e) { x[x]; s[[2]]; l[[3]][[2]] })
  }
  rm(e)
  gctorture(TRUE)
  got <- list(x[x], x[x][x], s[c(4, 1)], match(s, s), l[[3]][[2]], l[c(3, 1)])
  gctorture(FALSE)
  expect_identical(got, list(c(2L, 3L, 1L, 1L), c(1L, 2L, 3L, 3L), c(NA, "a"), c(1L, 2L, 1L, 4L), "b",
                             list(list(2, "b"), 1:3)))
})
