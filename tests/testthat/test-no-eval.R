# Nothing stored is evaluated: calls, symbols, formulas, missing arguments and
# objects holding them are stored as they are, wherever they sit (list
# elements, nested elements, attributes of vectors and lists, attributes of
# data frame columns), and come back identical in this process, after
# serialize()/unserialize() and in another process. Sharing has no side
# effect: the calls below would create files if they were run.

# Objects whose evaluation would differ from themselves (or fail, or write
# `marker`). Indexed, never bound to a variable: a variable holding the
# missing argument cannot be used.
language_kinds <- function(marker) {
  e <- globalenv()
  fm <- y ~ x + z
  environment(fm) <- e
  d <- data.frame(x = c(1, 2, 3, 4), y = c(2, 4, 5, 9), z = c(0, 1, 0, 1))
  fit <- lm(fm, data = d)
  cond <- simpleError("boom", call = quote(g(x, y = 2)))
  list(
    call_side_effect = bquote(file.create(.(marker))),
    call_unbound = quote(undefined_function_zz(y, z = undefined_zz)),
    call_stop = quote(stop("this call was evaluated")),
    call_nested = bquote(list(a = file.create(.(marker)), b = quote(q("no")))),
    # Parsed without source references (these two would carry them): a
    # srcref holds an environment, never identical to one restored in
    # another process.
    call_function = str2lang("function(x, y = 2) x + y"),
    call_if = quote(if (file.exists("x")) y else z),
    call_as_call = as.call(list(as.name("file.create"), marker)),
    call_braces = str2lang("{\n  x <- 1\n  file.create(x)\n}"),
    symbol_unbound = as.name("undefined_symbol_zz"),
    symbol_bound = as.name("pi"),
    symbol_odd = as.name("a b`c"),
    formula = fm,
    formula_one_sided = stats::as.formula("~ a + b", env = e),
    missing_argument = alist(a = )$a,
    alist = alist(a = , b = 1, c = file.create(marker)),
    expression = expression(file.create(marker), 1 + 2, undefined_zz),
    condition = cond,
    condition_list = list(cond, simpleWarning("w", call = quote(h()))),
    lm_call = fit$call,
    lm_terms = fit$terms,
    lm_fit = fit,
    closure = local(function(x) file.create(x), e)
  )
}

# Each place an object can sit, built around `value()` (a function, so the
# missing argument is never held in a variable).
language_positions <- function(value) {
  column <- c(1.5, 2.5, 3.5)
  attr(column, "what") <- value()
  big <- as.double(seq_len(1e5))
  attr(big, "what") <- value()
  vec <- 1:3
  attr(vec, "what") <- value()
  lst <- list(1, "a")
  attr(lst, "what") <- value()
  chr <- c("x", NA)
  attr(chr, "what") <- value()
  named <- c(a = 1L, b = 2L)
  attr(named, "what") <- value()
  list(
    element = list(value()),
    named_element = list(a = 1:3, b = value(), c = "z"),
    nested_element = list(a = list(b = list(1, value()), c = 2)),
    attribute_of_vector = vec,
    attribute_of_named_vector = named,
    attribute_of_strings = chr,
    attribute_of_big_vector = big,
    attribute_of_list = lst,
    attribute_in_list = list(p = vec, q = lst),
    column_attribute = data.frame(a = 1:3, b = I(column))
  )
}

language_cases <- function(marker) {
  kinds <- language_kinds(marker)
  cases <- list()
  for (k in names(kinds)) {
    positions <- language_positions(function() kinds[[k]])
    for (p in names(positions)) cases[[paste(k, p, sep = "/")]] <- positions[[p]]
  }
  cases
}

test_that("stored language objects are not evaluated and come back identical", {
  marker <- tempfile("mori-evaluated-")
  cases <- language_cases(marker)
  expect_gt(length(cases), 200)
  shared <- lapply(cases, share)
  expect_false(file.exists(marker))
  for (name in names(cases)) {
    expect_true(is.list(shared[[name]]) || is_shared(shared[[name]]), label = name)
    expect_identical(shared[[name]], cases[[name]], label = name)
    expect_identical(unserialize(serialize(shared[[name]], NULL)), cases[[name]], label = name)
  }
  expect_false(file.exists(marker))
})

test_that("another process gets the language objects, not their values", {
  marker <- tempfile("mori-evaluated-")
  cases <- language_cases(marker)
  name <- paste0("noeval-cases-", Sys.getpid())
  on.exit(unshare(name))
  published <- share(cases, name = name)
  ordinary <- lapply(cases, share)
  # The child maps the published list by name, so what it reads comes from
  # the region (this process's shared objects hold the originals); the
  # ordinary ones arrive serialized (on R >= 4.3 as references to regions).
  same <- in_child(function(name, ordinary, plain, marker) {
    mapped <- mori::map_shared(name)
    ok <- vapply(names(plain), function(n) {
      identical(mapped[[n]], plain[[n]]) && identical(ordinary[[n]], plain[[n]])
    }, logical(1))
    list(ok = ok, evaluated = file.exists(marker))
  }, list(name = name, ordinary = ordinary, plain = cases, marker = marker))
  expect_false(same$evaluated)
  expect_false(file.exists(marker))
  expect_equal(names(same$ok)[!same$ok], character(0))
  expect_length(same$ok, length(cases))
})

test_that("a published list of language objects maps identically by name", {
  marker <- tempfile("mori-evaluated-")
  kinds <- language_kinds(marker)
  name <- paste0("noeval-", Sys.getpid())
  on.exit(unshare(name))
  s <- share(kinds, name = name)
  expect_identical(s, kinds)
  expect_identical(map_shared(name), kinds)
  ok <- in_child(function(name, plain) identical(mori::map_shared(name), plain), list(name = name, plain = kinds))
  expect_true(ok)
  expect_false(file.exists(marker))
})

test_that("language objects on their own are returned as they are", {
  marker <- tempfile("mori-evaluated-")
  kinds <- language_kinds(marker)
  for (k in names(kinds)) {
    if (is.list(kinds[[k]])) next # lists (alist, conditions, lm fits) are shared
    expect_identical(share(kinds[[k]]), kinds[[k]], label = k)
  }
  expect_identical(share(alist(a = )), alist(a = ))
  expect_false(file.exists(marker))
})
