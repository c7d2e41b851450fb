# Whatever R lets an object carry, share() stores and gives back: attribute
# values are checked as strictly as R checks them when it sets them (names,
# dim, dimnames, class, tsp, comment, row.names), no more (levels, say, may
# be anything), and pairlists stay pairlists.

# Values of every kind, for attributes R does not check.
free_values <- function() {
  list(
    int = 1:3, int_empty = integer(0), int_na = NA_integer_,
    dbl = c(1.5, NA, NaN, -Inf), dbl_empty = double(0),
    lgl = c(TRUE, NA), chr = c("a", NA, ""), chr_empty = character(0),
    chr_utf8 = "\u00e9t\u00e9", cplx = 1i, raw = as.raw(0:3),
    long_int = 1:70, long_chr = paste0("s", 1:70), big_dbl = as.double(1:1e5),
    list = list(1, "a", NULL), list_empty = list(), list_null = list(NULL),
    list_named = list(a = 1, b = list(c = "d")),
    factor = factor(c("x", "y")), factor_int_levels = structure(1:2, levels = 1:2, class = "factor"),
    data_frame = data.frame(a = 1:2, b = c("x", "y")),
    matrix = matrix(1:4, 2, dimnames = list(c("a", "b"), NULL)),
    classed = structure(list(), class = c("odd", "")),
    with_attributes = structure(1:2, inner = structure("x", deeper = list(1))),
    date = as.Date("2024-01-01"),
    pairlist = pairlist(a = 1, b = "x"),
    pairlist_unnamed = pairlist(1, 2),
    formals = formals(function(x, y = 2, ...) NULL),
    call = quote(f(x)), symbol = as.name("s"),
    env = globalenv(), closure = sum
  )
}

# Hosts to carry each value.
hosts <- function() {
  list(
    int = 1:3, dbl = c(0.5, 1.5), chr = c("p", "q"), lgl = NA,
    list = list(1, "b"), empty_list = list(), df = data.frame(x = 1:2),
    matrix = matrix(1:6, 2), big = as.double(seq_len(1e5))
  )
}

# Objects with the attributes R checks, set the ways R allows.
checked_attribute_cases <- function() {
  x <- 1:6
  list(
    levels_int = structure(1:3, levels = 1:3),
    levels_dbl = structure(1:3, levels = c(0.5, 1, 2)),
    levels_list = structure(1:2, levels = list("a", 2)),
    levels_empty = structure(1:2, levels = character(0)),
    levels_pairlist = structure(1:2, levels = pairlist("a", "b")),
    factor_int_levels = structure(1:3, levels = 1:3, class = "factor"),
    factor_dbl_levels = structure(c(1L, 1L, 2L), levels = c(2.5, 3.5), class = c("ordered", "factor")),
    factor_no_levels = structure(1:2, class = "factor"),
    factor_na_levels = structure(1:2, levels = c(NA, "b"), class = "factor"),
    factor_many_levels = factor(paste0("l", 1:100)),
    class_odd = structure(1:2, class = c("", NA, "x y", "\u00e9")),
    class_many = structure(list(1), class = paste0("c", 1:80)),
    class_data_frame_like = structure(list(a = 1:2), class = "data.frame", row.names = c(NA, -2L)),
    row_names_compact = data.frame(a = 1:3),
    row_names_compact_positive = structure(list(a = 1:3), class = "data.frame", row.names = c(NA, 3L)),
    row_names_int = structure(list(a = 1:3), class = "data.frame", row.names = c(3L, 1L, 2L)),
    row_names_chr = data.frame(a = 1:2, row.names = c("r1", "r2")),
    row_names_empty = data.frame(),
    row_names_dbl_dput = structure(list(a = 1:2), class = "data.frame", row.names = c(NA_real_, -2)),
    row_names_on_vector = structure(1:3, row.names = c("a", "b", "c")),
    names_na = structure(1:2, names = c(NA, "")),
    names_short = `names<-`(1:3, "a"),
    names_list = structure(list(1, 2), names = c("a", "a")),
    names_empty_vector = structure(integer(0), names = character(0)),
    dim_zero = matrix(integer(0), 0, 3),
    dim_named = `dim<-`(x, c(a = 2L, b = 3L)),
    dim_3 = array(1:24, 2:4, dimnames = list(NULL, c("a", "b", "c"), NULL)),
    dimnames_named = matrix(1:4, 2, dimnames = list(rows = c("a", "b"), cols = c("c", "d"))),
    dimnames_factor = matrix(1:4, 2, dimnames = list(factor(c("a", "b")), NULL)),
    dimnames_empty = matrix(1:4, 2, dimnames = list(character(0), NULL)),
    dim_list = matrix(list(1, "a", NULL, 2), 2),
    tsp = ts(1:10, start = 2000, frequency = 4),
    tsp_int = `attr<-`(1:5, "tsp", c(1L, 5L, 1L)),
    comment = `comment<-`(1:3, c("a", "b")),
    comment_list = `comment<-`(list(1), "note"),
    pairlist = pairlist(a = 1, b = "x"),
    pairlist_formals = formals(function(x, y = 2, ...) NULL),
    pairlist_nested = list(a = pairlist(1, pairlist(2)), b = list(pairlist(c = 3))),
    pairlist_attribute = structure(1:3, pl = pairlist(x = 1, y = "z")),
    pairlist_with_attributes = structure(pairlist(1, 2), class = "odd", extra = 1:3)
  )
}

attribute_grid <- function() {
  values <- free_values()
  cases <- checked_attribute_cases()
  for (h in names(hosts())) {
    for (v in names(values)) {
      x <- hosts()[[h]]
      attr(x, "a") <- values[[v]]
      cases[[paste0(h, "/a=", v)]] <- x
      if (h %in% c("int", "df")) {
        y <- hosts()[[h]]
        attr(y, "levels") <- values[[v]]
        cases[[paste0(h, "/levels=", v)]] <- y
      }
    }
  }
  # Attribute values nested in a shared list, and as the attribute of an
  # attribute.
  cases$in_list <- list(a = cases$levels_int, b = list(cases$factor_int_levels, cases$pairlist))
  cases$attribute_of_attribute <- structure(1:2, outer = structure(1:2, levels = 1:2, pl = pairlist(1)))
  cases
}

test_that("R-legal attributes and pairlists are shared and come back identical", {
  cases <- attribute_grid()
  expect_gt(length(cases), 300)
  for (name in names(cases)) {
    s <- tryCatch(share(cases[[name]]), error = function(e) e)
    expect_false(inherits(s, "error"), label = paste(name, if (inherits(s, "error")) conditionMessage(s)))
    if (inherits(s, "error")) next
    expect_identical(s, cases[[name]], label = name)
    expect_identical(typeof(s), typeof(cases[[name]]), label = name)
    expect_identical(unserialize(serialize(s, NULL)), cases[[name]], label = name)
  }
})

test_that("R-legal attributes and pairlists come back identical in another process", {
  cases <- attribute_grid()
  # Environments and functions cannot be identical across processes.
  keep <- !grepl("=(env|closure)$", names(cases))
  cases <- cases[keep]
  name <- paste0("attributes-legal-", Sys.getpid())
  on.exit(unshare(name))
  s <- share(cases, name = name)
  ordinary <- lapply(cases, share)
  ok <- in_child(function(name, ordinary, plain) {
    mapped <- mori::map_shared(name)
    vapply(names(plain), function(n) {
      identical(mapped[[n]], plain[[n]]) && identical(ordinary[[n]], plain[[n]]) &&
        identical(typeof(mapped[[n]]), typeof(plain[[n]]))
    }, logical(1))
  }, list(name = name, ordinary = ordinary, plain = cases))
  expect_equal(names(ok)[!ok], character(0))
  expect_length(ok, length(cases))
})

test_that("a pairlist on its own is returned as it is, named or not", {
  pl <- pairlist(a = 1, b = "x")
  expect_identical(share(pl), pl)
  expect_identical(typeof(share(pl)), "pairlist")
  expect_identical(share(formals(function(x, y = 2) NULL)), formals(function(x, y = 2) NULL))
})
