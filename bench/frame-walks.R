# Whole-frame walks on a shared data frame (issue 14, item 6): colMeans(df),
# unlist(df, use.names = FALSE), as.matrix(df) and c(df$x1, df$x2) on a 200 MB
# frame (5 double columns), plain vs shared vs a floor, in one run:
#
#   - plain: the ordinary data frame;
#   - shared: share(df);
#   - floor: a data frame whose columns are views of minimal ALTREP double
#     classes (compiled on the fly with R CMD SHLIB, one class per column)
#     whose methods do the least they can: Dataptr returns a static pointer
#     to a plain copy (one load), Elt reads one element, Get_region copies.
#     What any ALTREP vector pays in R's dispatch is what the floor pays.
#
# The floor class also counts the calls R makes to each of its methods, so
# the table says what each walk asks of a vector on this R (Elt? Dataptr?
# Dataptr_or_null? Get_region?), per element.
#
# Times: median of MORI_BENCH_REPS (default 3) after gc(). Size:
# MORI_BENCH_MB (default 200). Output: results/frame-walks-R<version>.csv.
#
# Usage: Rscript bench/frame-walks.R
#        tools/r45.sh run bash -c 'R CMD INSTALL -l /tmp/l . && R_LIBS=/tmp/l Rscript bench/frame-walks.R'

source(file.path(dirname(sub("^--file=", "", grep("^--file=", c(commandArgs(FALSE), "--file=bench/."), value = TRUE)[1L])), "common.R"))
bench_start("frame-walks: colMeans, unlist, as.matrix, c() on a shared data frame")

reps <- as.integer(env_num("MORI_BENCH_REPS", 3))
mb <- bench_mb(200)

floor_src <- '
#include <string.h>
#include <R.h>
#include <Rinternals.h>
#include <R_ext/Altrep.h>
#include <R_ext/Rdynload.h>

/* One class per column (up to 8), so that each method finds its data with
   one load of a static pointer: the least any ALTREP class can do. */
#define NCOL 8
static R_altrep_class_t floor_class[NCOL];
static double *floor_ptr[NCOL];
static R_xlen_t floor_len[NCOL];
static SEXP floor_kept[NCOL];
static double n_elt, n_dataptr, n_dataptr_or_null, n_get_region;

#define FLOOR(k) \\
  static R_xlen_t length_##k(SEXP x) { return floor_len[k]; } \\
  static void *dataptr_##k(SEXP x, Rboolean w) { n_dataptr++; return floor_ptr[k]; } \\
  static const void *dataptr_or_null_##k(SEXP x) { n_dataptr_or_null++; return floor_ptr[k]; } \\
  static double elt_##k(SEXP x, R_xlen_t i) { n_elt++; return floor_ptr[k][i]; } \\
  static R_xlen_t get_region_##k(SEXP x, R_xlen_t i, R_xlen_t n, double *buf) { \\
    n_get_region++; \\
    if (i >= floor_len[k]) return 0; \\
    if (n > floor_len[k] - i) n = floor_len[k] - i; \\
    memcpy(buf, floor_ptr[k] + i, n * sizeof(double)); \\
    return n; \\
  } \\
  static void register_##k(DllInfo *dll) { \\
    R_altrep_class_t c = R_make_altreal_class("floor_real_" #k, "floor_real", dll); \\
    R_set_altrep_Length_method(c, length_##k); \\
    R_set_altvec_Dataptr_method(c, dataptr_##k); \\
    R_set_altvec_Dataptr_or_null_method(c, dataptr_or_null_##k); \\
    R_set_altreal_Elt_method(c, elt_##k); \\
    R_set_altreal_Get_region_method(c, get_region_##k); \\
    floor_class[k] = c; \\
  }
FLOOR(0) FLOOR(1) FLOOR(2) FLOOR(3) FLOOR(4) FLOOR(5) FLOOR(6) FLOOR(7)

SEXP floor_view(SEXP v, SEXP column) {
  int k = asInteger(column);
  if (TYPEOF(v) != REALSXP || ALTREP(v)) error("a plain double vector is needed");
  if (k < 0 || k >= NCOL) error("column out of range");
  if (floor_kept[k]) R_ReleaseObject(floor_kept[k]);
  R_PreserveObject(floor_kept[k] = v);
  floor_ptr[k] = REAL(v);
  floor_len[k] = XLENGTH(v);
  return R_new_altrep(floor_class[k], R_NilValue, R_NilValue);
}

SEXP floor_counts(void) {
  SEXP out = PROTECT(allocVector(REALSXP, 4));
  REAL(out)[0] = n_elt; REAL(out)[1] = n_dataptr;
  REAL(out)[2] = n_dataptr_or_null; REAL(out)[3] = n_get_region;
  n_elt = n_dataptr = n_dataptr_or_null = n_get_region = 0;
  UNPROTECT(1);
  return out;
}

static const R_CallMethodDef floor_calls[] = {
  {"floor_view", (DL_FUNC) &floor_view, 2}, {"floor_counts", (DL_FUNC) &floor_counts, 0},
  {NULL, NULL, 0}};

void R_init_floor_real(DllInfo *dll) {
  register_0(dll); register_1(dll); register_2(dll); register_3(dll);
  register_4(dll); register_5(dll); register_6(dll); register_7(dll);
  R_registerRoutines(dll, NULL, floor_calls, NULL, NULL);
}
'

lib <- tryCatch(compile_shlib(floor_src, "floor_real"), error = function(e) {
  warning("no floor figures: ", conditionMessage(e))
  NULL
})
if (!is.null(lib)) dyn.load(lib)

plain <- make_df(mb)
n <- nrow(plain)
shared <- share(plain)
stopifnot(is_shared(shared))
frames <- list(plain = plain, shared = shared)
if (!is.null(lib)) {
  fl <- lapply(seq_along(plain), function(k) .Call("floor_view", plain[[k]], k - 1L))
  frames$floor <- structure(fl, names = names(plain), class = "data.frame", row.names = c(NA, -n))
}

walks <- list(
  "colMeans(df)" = function(d) colMeans(d),
  "unlist(df, use.names = FALSE)" = function(d) unlist(d, use.names = FALSE),
  "as.matrix(df)" = function(d) as.matrix(d),
  "c(df$x1, df$x2)" = function(d) c(d$x1, d$x2)
)
# elements each walk reads (columns of n rows)
walk_elements <- c(5, 5, 5, 2) * n

rows <- list()
for (w in names(walks)) {
  f <- walks[[w]]
  want <- f(plain)
  t <- list()
  for (mode in names(frames)) {
    d <- frames[[mode]]
    stopifnot(identical(f(d), want))   # also the warm-up: pages mapped, caches made
    t[[mode]] <- stats::median(time_reps(function() f(d), reps))
  }
  calls <- if (!is.null(lib)) {
    invisible(.Call("floor_counts"))
    invisible(f(frames$floor))
    .Call("floor_counts") / walk_elements[[match(w, names(walks))]]
  } else rep(NA_real_, 4)
  rows[[w]] <- data.frame(
    walk = w, plain_s = t$plain, shared_s = t$shared,
    floor_s = if (is.null(t$floor)) NA_real_ else t$floor,
    shared_vs_plain = t$shared / t$plain,
    floor_vs_plain = if (is.null(t$floor)) NA_real_ else t$floor / t$plain,
    shared_vs_floor = if (is.null(t$floor)) NA_real_ else t$shared / t$floor,
    elt_per_element = calls[1], dataptr_per_element = calls[2],
    dataptr_or_null_per_element = calls[3], get_region_per_element = calls[4],
    stringsAsFactors = FALSE)
}
res <- do.call(rbind, rows)
print_table(res[, c("walk", "plain_s", "shared_s", "floor_s", "shared_vs_plain", "floor_vs_plain", "shared_vs_floor")],
            sprintf("whole-frame walks, %.0f MB data frame (5 double columns), median of %d", mb, reps))
print_table(res[, c("walk", "elt_per_element", "dataptr_per_element", "dataptr_or_null_per_element",
                    "get_region_per_element")],
            "what each walk asks of an ALTREP double column (method calls per element read, floor class)",
            digits = 2)
res$mb <- mb
write_results(res, sprintf("frame-walks-R%s.%s", R.version$major, R.version$minor))
