# The R boundary: what foreign ALTREP classes, garbage collection and failed
# allocations can do to share() and to views.

# A minimal foreign ALTSTRING class, compiled for the test: its Elt makes a
# fresh R string on every call, a text never made before whose length changes
# from call to call ("s<i %% 3>-<call number>-" and 0 to 16 "x"s). share()
# reads a character vector twice (to plan the region, then to write it);
# reading such a vector twice gives other strings, of other lengths.
fresh_strings_src <- '
#include <stdio.h>
#include <R.h>
#include <Rinternals.h>
#include <R_ext/Altrep.h>
#include <R_ext/Rdynload.h>

static R_altrep_class_t fresh_class;
static int fresh_count;

static R_xlen_t fresh_length(SEXP x) { return (R_xlen_t) REAL(R_altrep_data1(x))[0]; }

static SEXP fresh_elt(SEXP x, R_xlen_t i) {
  char buf[64];
  fresh_count++;
  snprintf(buf, sizeof buf, "s%d-%d-%.*s", (int) (i % 3), fresh_count, fresh_count % 17, "xxxxxxxxxxxxxxxxxxxx");
  return mkChar(buf);
}

SEXP fresh_strings(SEXP n) { return R_new_altrep(fresh_class, n, R_NilValue); }

/* Classes whose elements cannot be read: Elt and Get_region signal an R
   error at element data1[1] (0-based); data1[0] is the length. */
static R_altrep_class_t failing_string_class, failing_real_class;

static void fail_at(SEXP x, R_xlen_t i, R_xlen_t n) {
  R_xlen_t bad = (R_xlen_t) REAL(R_altrep_data1(x))[1];
  if (bad >= i && bad < i + n) error("element %d cannot be read", (int) bad + 1);
}

static SEXP failing_string_elt(SEXP x, R_xlen_t i) { fail_at(x, i, 1); return mkChar("ok"); }
static double failing_real_elt(SEXP x, R_xlen_t i) { fail_at(x, i, 1); return (double) i; }
static R_xlen_t failing_real_region(SEXP x, R_xlen_t i, R_xlen_t n, double *buf) {
  R_xlen_t len = fresh_length(x);
  if (n > len - i) n = len - i;
  fail_at(x, i, n);
  for (R_xlen_t k = 0; k < n; k++) buf[k] = (double) (i + k);
  return n;
}

SEXP failing(SEXP type, SEXP spec) {
  return R_new_altrep(asInteger(type) == 1 ? failing_string_class : failing_real_class, spec, R_NilValue);
}

static const R_CallMethodDef fresh_calls[] = {
  {"fresh_strings", (DL_FUNC) &fresh_strings, 1}, {"failing", (DL_FUNC) &failing, 2}, {NULL, NULL, 0}};

void R_init_fresh_strings(DllInfo *dll) {
  fresh_class = R_make_altstring_class("fresh_string", "fresh_strings", dll);
  R_set_altrep_Length_method(fresh_class, fresh_length);
  R_set_altstring_Elt_method(fresh_class, fresh_elt);
  failing_string_class = R_make_altstring_class("failing_string", "fresh_strings", dll);
  R_set_altrep_Length_method(failing_string_class, fresh_length);
  R_set_altstring_Elt_method(failing_string_class, failing_string_elt);
  failing_real_class = R_make_altreal_class("failing_real", "fresh_strings", dll);
  R_set_altrep_Length_method(failing_real_class, fresh_length);
  R_set_altreal_Elt_method(failing_real_class, failing_real_elt);
  R_set_altreal_Get_region_method(failing_real_class, failing_real_region);
  R_registerRoutines(dll, NULL, fresh_calls, NULL, NULL);
}
'

# Path of the compiled class's library (skips the test if it cannot be built).
fresh_strings_lib <- function() {
  tryCatch(compile_shlib(fresh_strings_src, "fresh_strings"), error = function(e) skip(conditionMessage(e)))
}

# Runs `fun(lib, ...)` in a fresh R process (a broken write may crash it).
in_fresh_child <- function(fun, ...) {
  lib <- fresh_strings_lib()
  in_child(fun, list(lib = lib, ...))
}

# The shapes the class's strings can take; element i (1-based) starts "s<(i-1) %% 3>-".
fresh_ok <- function(v) {
  is.character(v) && !anyNA(v) && all(grepl("^s[012]-[0-9]+-x{0,16}$", v)) &&
    all(substr(v, 2, 2) == as.character((seq_along(v) - 1L) %% 3L))
}

test_that("share() of a character vector whose strings change between reads stores one consistent reading", {
  res <- in_fresh_child(function(lib) {
    dyn.load(lib)
    fresh <- function(n) .Call("fresh_strings", as.double(n))
    read <- function(x) tryCatch(as.character(x[seq_along(x)]), error = function(e) paste("error:", conditionMessage(e)))
    cases <- list(
      vector = function() fresh(5000),
      small = function() fresh(7),
      in_list = function() list(a = 1, b = fresh(3000), c = list(d = fresh(50), e = "z")),
      as_names = function() structure(as.double(1:2000), names = fresh(2000)),
      as_attribute = function() structure(1:3, tag = fresh(300)),
      in_data_frame = function() data.frame(n = 1:1000, s = fresh(1000), stringsAsFactors = FALSE)
    )
    lapply(cases, function(make) {
      s <- tryCatch(mori::share(make()), error = function(e) paste("error:", conditionMessage(e)))
      if (is.character(s) && length(s) == 1 && startsWith(s, "error:")) return(list(share = s))
      gc()
      list(
        share = "ok",
        values = switch(class(s)[1],
          character = read(s),
          numeric = read(names(s)),
          integer = read(attr(s, "tag")),
          list = c(read(s$b), read(s$c$d)),
          data.frame = read(s$s)
        ),
        lengths = switch(class(s)[1], list = c(length(s$b), length(s$c$d)), data.frame = nrow(s), NULL)
      )
    })
  })
  for (case in names(res)) {
    r <- res[[case]]
    expect_identical(r$share, "ok", info = case)
    expect_true(fresh_ok(r$values), info = paste(case, paste(head(r$values, 3), collapse = " ")))
  }
  expect_length(res$vector$values, 5000)
  expect_length(res$in_list$values, 3050)
})

test_that("share() of changing strings holds up under gctorture", {
  res <- in_fresh_child(function(lib) {
    dyn.load(lib)
    fresh <- function(n) .Call("fresh_strings", as.double(n))
    x <- list(fresh(20), structure(1:2, names = fresh(2)))
    gctorture(TRUE)
    s <- tryCatch(mori::share(x), error = function(e) conditionMessage(e))
    v <- tryCatch(c(as.character(s[[1]]), names(s[[2]])), error = function(e) conditionMessage(e))
    gctorture(FALSE)
    list(shared = is.list(s), values = v)
  })
  expect_true(res$shared)
  expect_true(fresh_ok(res$values[1:20]), info = paste(res$values, collapse = " "))
  expect_true(fresh_ok(res$values[21:22]), info = paste(res$values, collapse = " "))
})

# Descriptors and region mappings of this process, and the regions mori has open.
process_resources <- function() {
  maps <- readLines("/proc/self/maps")
  c(
    fds = length(list.files("/proc/self/fd")),
    mappings = sum(grepl("memfd:mori_|/dev/shm/mori\\.", maps)),
    regions = nrow(mori::shared_regions())
  )
}

test_that("an R error inside a foreign ALTREP method while sharing is that R error, and leaves nothing behind", {
  res <- in_fresh_child(function(lib, resources) {
    dyn.load(lib)
    failing <- function(type, n, at) .Call("failing", type, as.double(c(n, at)))
    cases <- list(
      string = function() failing(1L, 10, 3),
      string_late = function() failing(1L, 5000, 4999),
      real = function() failing(2L, 1e5, 7e4),
      in_list = function() list(a = 1:3, b = letters, c = list(failing(1L, 10, 0))),
      after_stored = function() list(f = function(x) x, s = failing(2L, 10, 9)),
      as_names = function() structure(as.double(1:10), names = failing(1L, 10, 5)),
      as_attribute = function() structure(1:3, tag = failing(2L, 200, 150)),
      published = function() list(1, failing(1L, 10, 2))
    )
    keep <- mori::share(list(1:10, "held")) # a region open throughout
    before <- resources()
    out <- lapply(names(cases), function(case) {
      x <- cases[[case]]()
      name <- if (case == "published") sprintf("boundary-%x", Sys.getpid()) else NULL
      e <- tryCatch({ mori::share(x, name = name); NULL }, error = function(e) e)
      list(class = class(e), message = if (!is.null(e)) conditionMessage(e))
    })
    names(out) <- names(cases)
    invisible(gc())
    list(out = out, before = before, after = resources(), still = identical(keep[[2]], "held"))
  }, resources = process_resources)
  for (case in names(res$out)) {
    r <- res$out[[case]]
    expect_true("simpleError" %in% r$class, info = case)
    expect_match(r$message, "^element [0-9]+ cannot be read$", info = case)
  }
  expect_identical(res$after, res$before)
  expect_true(res$still)
})
