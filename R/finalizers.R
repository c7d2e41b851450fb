# Views made inside finalizers (see src/rust/src/deferred.rs): R loses the
# finalizers registered while a batch of finalizers runs, so views made by
# or after a share() or map_shared() called from a finalizer are kept aside
# and their finalizers registered again at the next safe point.

# Whether the calling code runs inside a finalizer. R runs each finalizer
# in a top-level context of its own, calling an R finalizer as
# `(<closure>)(<key>)` evaluated in the global environment; a C finalizer
# that calls back into R (R_RegisterCFinalizerEx) typically evaluates a call
# of a function object, `(<closure>)()` or with arguments, there too (also
# through R_tryEval, which starts another top-level context). So the first
# frame above the innermost top-level context has a function object itself
# in the function position and the global environment as its parent. At
# R's own top level that frame is the call typed or sourced, whose function
# is a name or a call, never a function object: do.call(f, args) at top
# level is frame 1 (`do.call(...)`), not the call it makes.
#
# The cost is a few walks of R's context stack, O(depth) (a scan of every
# frame with sys.calls() and sys.parents() is quadratic: 1.7 s under 3000
# nested calls). `sys.nframe()` evaluated where no frame's environment is
# (a fresh environment, through do.call(), which adds no eval() context)
# finds no frame of its own and counts the frames below R's innermost
# top-level context (R's do_sys stops its search there), so the frame above
# them is the one to look at. Other C code calling R function objects in the
# global environment under a top-level context of its own (task callbacks,
# R_tryEval callbacks) is taken for a finalizer: its views are released all
# the same, only registered at the next safe point. Not seen: R code that a
# C finalizer calls by name, and a finalizer's R code run under a further
# top-level context (C code it calls that runs R through R_tryEval).
from_finalizer <- function() {
  first <- do.call(sys.nframe, list(), envir = new.env()) + 1L
  # This function's own frame is not the one: the probe that mori's C code
  # evaluates is itself a call `(<closure>)()` from the global environment.
  if (first >= sys.nframe()) return(FALSE)
  is.function(sys.call(first)[[1L]]) &&
    identical(do.call(parent.frame, list(), envir = sys.frame(first)), globalenv())
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
