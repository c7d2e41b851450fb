# data.table on shared data behaves as on plain data: `dt[, b := 1]` adds
# the column without "Invalid .internal.selfref detected" (data.table warns
# when its self-reference attribute points at another object than the one
# it is given), in the process that shared the table and in workers that
# received it, and gives what it gives on a plain copy. The view built in
# the owner gets a fresh self-reference pointing at itself
# (build/selfref.rs); identical(share(dt), dt) still holds.

# What `f(x)` returns and the warnings it gave. Only base R is used, and its
# environment is the base one, so workers get it as an argument.
with_warnings <- function(f, x) {
  warnings <- character()
  value <- withCallingHandlers(f(x), warning = function(w) {
    warnings <<- c(warnings, conditionMessage(w))
    invokeRestart("muffleWarning")
  })
  list(value = value, warnings = warnings)
}
environment(with_warnings) <- baseenv()

# Tables of assorted shapes: strings, a factor, a key, large columns (so that
# on R 4.2, where a shared list is a plain list of views, they stay views).
datatables <- function() {
  n <- 5e4
  list(
    plain = data.table::data.table(a = as.double(seq_len(n)), s = rep_len(c("x", "y", "z"), n)),
    factor = data.table::data.table(f = factor(rep_len(c("u", "v"), n)), i = seq_len(n)),
    keyed = data.table::data.table(k = rev(seq_len(n)), v = as.double(seq_len(n)), key = "k"),
    small = data.table::data.table(a = 1:3, b = c("p", "q", "r"))
  )
}

# The edits checked, each applied to a table and returning it.
edits <- list(
  add = function(x) x[, b2 := 1][],
  add_two = function(x) x[, `:=`(n1 = 1L, n2 = "a")][],
  replace = function(x) x[, names(x)[1] := rev(x[[1]])][],
  by_group = function(x) x[, cnt := .N, by = c(names(x)[2])][],
  # data.table's shallow copy (it trusts a valid self-reference's count of
  # column slots), set() in place, a key set in place.
  as_list = function(x) lapply(x, identity),
  set = function(x) data.table::set(x, i = 1:2, j = 1L, value = x[[1]][3:4])[],
  setkey = function(x) data.table::setkeyv(x, names(x)[2])[]
)
# data.table's `[` works as data.table only for code whose top environment
# knows data.table (its cedta() check): mori's namespace, where testthat
# runs these tests, does not import it; the global environment counts.
edits <- lapply(edits, function(f) {
  environment(f) <- globalenv()
  f
})

test_that("dt[, b := 1] on a shared data.table in its owner: no warning, plain result", {
  skip_if_not_installed("data.table")
  # R >= 4.6 with data.table < 1.18.0: the view keeps the original
  # self-reference (R/datatable.R says why), so := warns there. Before R 4.6
  # an older data.table gets a plain list of views, as on R 4.2.
  loadNamespace("data.table")
  renewed <- getRversion() < "4.6.0" || mori:::selfref_renewable()
  for (tn in names(datatables())) {
    for (en in names(edits)) {
      dt <- datatables()[[tn]]
      s <- share(dt)
      expect_true(identical(s, dt), label = paste(tn, "identical(share(dt), dt)"))
      expect_true(is_shared(s), label = paste(tn, "is_shared"))
      name <- shared_name(s)
      # An edit in place (set(), setkey()) gives every column it touches a
      # private copy: once no view of the region is left, the region is
      # freed, as the lifetime rule says. A second view keeps it mapped so
      # that what the region holds after the edit can be compared.
      held <- map_shared(name)
      got <- with_warnings(edits[[en]], s)
      want <- with_warnings(edits[[en]], data.table::copy(dt))
      if (renewed) {
        expect_identical(got$warnings, character(), label = paste(tn, en, "warnings"))
      } else {
        expect_true(all(grepl("internal.selfref|shallow copy of this data.table", got$warnings)), label = paste(tn, en, "warnings"))
      }
      expect_identical(got$value, want$value, label = paste(tn, en, "result"))
      # The shared table itself was changed only where := changes a plain
      # one in place, and the region never.
      invisible(gc())
      expect_identical(held, dt, label = paste(tn, en, "region, view held"))
      expect_identical(map_shared(name), dt, label = paste(tn, en, "region"))
      # The original still takes := without a warning.
      expect_identical(with_warnings(edits$add, dt)$warnings, character())
    }
  }
  # A data.table inside a shared list.
  l <- share(list(dt = datatables()$plain, other = 1:5))
  x <- l$dt
  got <- with_warnings(edits$add, x)
  if (renewed) expect_identical(got$warnings, character())
  expect_identical(got$value, edits$add(data.table::copy(datatables()$plain)))
  expect_true(is_shared(l$other))
})

# The worker's side: each table, received as a reference (a fresh one for
# each edit: := changes a table in place), edited there and compared with
# the same edit of the plain table received the same way (its
# self-reference then has a NULL address: data.table takes it for a table
# read from disk).
worker_edits <- function(tables, plain, edits, with_warnings) {
  library(data.table)
  out <- list()
  for (tn in names(tables)) for (en in names(edits)) {
    f <- edits[[en]]
    environment(f) <- globalenv()
    want <- with_warnings(f, unserialize(plain[[tn]]))
    x <- unserialize(tables[[tn]])
    shared <- mori::is_shared(x)
    got <- with_warnings(f, x)
    out[[paste(tn, en)]] <- list(shared = shared, warnings = got$warnings,
                                 same = identical(got$value, want$value), value = got$value)
  }
  out
}

check_worker <- function(res, tables, where, checked_edits = edits) {
  for (key in names(res)) {
    r <- res[[key]]
    tn <- strsplit(key, " ")[[1]][1]
    en <- strsplit(key, " ")[[1]][2]
    # (On R < 4.3 the small table travels by value, and so do a list
    # column's small cells: the table is then not shared as a whole.)
    by_value <- tn == "small" || (tn == "listcol" && getRversion() < "4.3.0")
    if (!by_value) expect_true(r$shared, label = paste(where, key, "received shared"))
    expect_identical(r$warnings, character(), label = paste(where, key, "warnings"))
    expect_true(r$same, label = paste(where, key, "same as plain there"))
    want <- checked_edits[[en]](data.table::copy(tables[[tn]]))
    if (any(vapply(want, is.list, TRUE))) {
      # (A list column: compared as lists, without the self-reference.)
      plain_list <- function(x) `attr<-`(unclass(x), ".internal.selfref", NULL)
      expect_equal(plain_list(r$value), plain_list(want), label = paste(where, key, "value back"))
    } else {
      expect_equal(as.data.frame(r$value), as.data.frame(want), label = paste(where, key, "value back"))
    }
  }
}

test_that("dt[, b := 1] on a received shared data.table in a callr child", {
  skip_on_cran()
  skip_if_not_installed("data.table")
  skip_if_not_installed("callr")
  tables <- datatables()
  shared <- lapply(tables, share)
  bytes <- lapply(shared, serialize, connection = NULL)
  plain <- lapply(tables, serialize, connection = NULL)
  res <- callr::r(worker_edits, list(tables = bytes, plain = plain, edits = edits, with_warnings = with_warnings),
                  libpath = .libPaths())
  check_worker(res, tables, "callr")
})

test_that("dt[, b := 1] on a received shared data.table in a PSOCK worker", {
  skip_on_cran()
  skip_if_not_installed("data.table")
  cl <- parallel::makePSOCKcluster(1)
  on.exit(parallel::stopCluster(cl))
  parallel::clusterCall(cl, function(lib) .libPaths(c(lib, .libPaths())), .libPaths())
  tables <- datatables()
  shared <- lapply(tables, share)
  # The tables travel as references (a few hundred bytes each).
  bytes <- lapply(shared, serialize, connection = NULL)
  expect_lt(sum(lengths(bytes)), 5000)
  plain <- lapply(tables, serialize, connection = NULL)
  res <- parallel::clusterCall(cl, worker_edits, bytes, plain, edits, with_warnings)[[1]]
  check_worker(res, tables, "PSOCK")
})

# Whether := on a view in its owner gives no warning: everywhere but R >= 4.6
# with a data.table older than 1.18.0 (see the first test).
owner_renewed <- function() {
  loadNamespace("data.table")
  getRversion() < "4.6.0" || mori:::selfref_renewable()
}

test_that("materialize() of a shared data.table in its owner: a plain data.table that takes := quietly", {
  skip_if_not_installed("data.table")
  loadNamespace("data.table")
  for (tn in names(datatables())) {
    dt <- datatables()[[tn]]
    s <- share(dt)
    name <- shared_name(s)
    m <- materialize(s)
    expect_true(data.table::is.data.table(m), label = paste(tn, "is.data.table"))
    expect_identical(m, dt, label = paste(tn, "values"))
    expect_false(is_shared(m), label = paste(tn, "is_shared"))
    for (en in c("add", "replace", "set")) {
      m <- materialize(s)
      got <- with_warnings(edits[[en]], m)
      # A plain table: no warning on any R or data.table.
      expect_identical(got$warnings, character(), label = paste(tn, en, "warnings"))
      expect_identical(got$value, edits[[en]](data.table::copy(dt)), label = paste(tn, en, "result"))
      expect_identical(s, dt, label = paste(tn, en, "shared table"))
      expect_identical(map_shared(name), dt, label = paste(tn, en, "region"))
    }
  }
})

test_that("a shared data.table as an attribute value reads back identical and takes := without touching the region", {
  skip_if_not_installed("data.table")
  renewed <- owner_renewed()
  for (tn in names(datatables())) {
    dt <- datatables()[[tn]]
    for (en in c("add", "add_two", "replace", "set")) {
      plain <- structure(1:10, dt = dt)
      o <- share(plain)
      name <- shared_name(o)
      held <- map_shared(name)
      a <- attr(o, "dt")
      expect_identical(a, dt, label = paste(tn, "attribute value"))
      got <- with_warnings(edits[[en]], a)
      if (renewed) {
        expect_identical(got$warnings, character(), label = paste(tn, en, "warnings"))
      }
      expect_identical(got$value, edits[[en]](data.table::copy(dt)), label = paste(tn, en, "result"))
      invisible(gc())
      expect_identical(held, plain, label = paste(tn, en, "region, view held"))
      expect_identical(map_shared(name), plain, label = paste(tn, en, "region"))
    }
  }
})

# A table with a list column (vectors, a string, NULL, a list), large enough
# that on R 4.2 its columns stay views.
listcol_table <- function() {
  n <- 5e4
  data.table::data.table(a = as.double(seq_len(n)),
                         l = rep_len(list(1:3, "a", NULL, list(x = 1, y = "b"), rnorm(2)), n))
}
listcol_edits <- c(edits[c("add", "add_two", "replace", "as_list", "set")], list(
  # The list column itself replaced, and one of its cells.
  relist = function(x) x[, l := rev(l)][],
  cell = function(x) x[2L, l := list(list(99))][]
))
listcol_edits <- lapply(listcol_edits, function(f) {
  environment(f) <- globalenv()
  f
})

test_that("a shared data.table with a list column: read back, := in its owner", {
  skip_if_not_installed("data.table")
  renewed <- owner_renewed()
  set.seed(3)
  dt <- listcol_table()
  for (en in names(listcol_edits)) {
    s <- share(dt)
    expect_identical(s, dt)
    expect_identical(s$l[1:5], dt$l[1:5])
    name <- shared_name(s)
    held <- map_shared(name)
    got <- with_warnings(listcol_edits[[en]], s)
    if (renewed) expect_identical(got$warnings, character(), label = paste(en, "warnings"))
    expect_identical(got$value, listcol_edits[[en]](data.table::copy(dt)), label = paste(en, "result"))
    invisible(gc())
    expect_identical(held, dt, label = paste(en, "region, view held"))
    expect_identical(map_shared(name), dt, label = paste(en, "region"))
  }
})

test_that("a shared data.table with a list column: := in a callr child", {
  skip_on_cran()
  skip_if_not_installed("data.table")
  skip_if_not_installed("callr")
  set.seed(3)
  tables <- list(listcol = listcol_table())
  # Held until the child has mapped them: a reference to a collected
  # object would be "not found".
  shared <- lapply(tables, share)
  bytes <- lapply(shared, serialize, connection = NULL)
  plain <- lapply(tables, serialize, connection = NULL)
  res <- callr::r(worker_edits, list(tables = bytes, plain = plain, edits = listcol_edits, with_warnings = with_warnings),
                  libpath = .libPaths())
  expect_true(all(vapply(shared, is_shared, TRUE)))
  check_worker(res, tables, "callr", listcol_edits)
})
