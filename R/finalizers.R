# Views made inside finalizers (see src/rust/src/deferred.rs): R loses the
# finalizers registered while a batch of finalizers runs, so views made by
# or after a share() or map_shared() called from a finalizer are kept aside
# and their finalizers registered again at the next safe point.

# Whether the calling code runs inside a finalizer: R calls an R finalizer
# as `(<closure>)(<key>)` evaluated in the global environment, so some frame
# has a closure object itself in the function position, one argument that is
# an environment or external pointer, and the global environment as its
# parent. do.call(f, list(env)) at top level makes the same call, from a
# frame of do.call(): such a frame is not taken for a finalizer (a finalizer
# that R happened to start right inside do.call() would be, which only
# leaves its views to their first registration, as before this check).
from_finalizer <- function() {
  calls <- sys.calls()
  parents <- sys.parents()
  for (k in seq_along(calls)) {
    call <- calls[[k]]
    if (parents[[k]] == 0L && length(call) == 2L && is.function(call[[1L]]) &&
        (is.environment(call[[2L]]) || typeof(call[[2L]]) == "externalptr") &&
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
