# Views made inside finalizers (see src/rust/src/deferred.rs): R loses the
# finalizers registered while a batch of finalizers runs, so views made by
# or after a share() or map_shared() called from a finalizer are kept aside
# and their finalizers registered again at the next safe point.

# Whether the calling code runs inside a finalizer: R calls an R finalizer
# as `(<closure>)(<key>)` evaluated in the global environment, and a C
# finalizer that calls back into R (R_RegisterCFinalizerEx) typically
# evaluates a call of a function object, `(<closure>)()` or with arguments,
# there too. So some frame has a function object itself in the function
# position and the global environment as its parent. do.call(f, args) at
# top level makes the same call, from a frame of do.call(): such a frame is
# not taken for a finalizer (a finalizer that R happened to start right
# inside do.call() would be, which only leaves its views to their first
# registration). Other C code calling R function objects in the global
# environment (task callbacks, later's callbacks, Rcpp::Function) is taken
# for a finalizer: its views are released all the same, only registered at
# the next safe point. R code that a C finalizer calls by name is not seen.
from_finalizer <- function() {
  calls <- sys.calls()
  parents <- sys.parents()
  # The last frame is this function's own: mori's C code calls it as
  # `(<closure>)()` from the global environment.
  for (k in seq_len(length(calls) - 1L)) {
    call <- calls[[k]]
    if (parents[[k]] == 0L && is.function(call[[1L]]) &&
        !(k > 1L && identical(sys.function(k - 1L), base::do.call))) {
      return(TRUE)
    }
  }
  FALSE
}

# A share() or map_shared() starts: says whether it was called from a
# finalizer (outside one, first registers the deferred finalizers); returns
# what leave_call() needs.
enter_call <- function() .Call(mori_defer_releases, "enter", from_finalizer(), from_finalizer)

leave_call <- function(token) invisible(.Call(mori_defer_releases, "leave", token, NULL))

release_deferred <- function(...) .Call(mori_defer_releases, "top", NULL, NULL)

# How many views made in finalizers wait for the next safe point.
deferred_count <- function() .Call(mori_defer_releases, "count", NULL, NULL)

.onLoad <- function(libname, pkgname) {
  addTaskCallback(release_deferred, name = "mori: views made in finalizers")
  invisible()
}

.onUnload <- function(libpath) {
  removeTaskCallback("mori: views made in finalizers")
  invisible()
}
