#' Errors mori signals
#'
#' Every error mori signals is a condition of class
#' `c("mori_error_<kind>", "mori_error", "error", "condition")`, so code can
#' handle one kind of failure and let the others through:
#'
#' ```r
#' tryCatch(map_shared(name), mori_error_not_found = function(e) NULL)
#' ```
#'
#' Its message states the problem on the first line and what to do about it
#' on the second. The kinds:
#'
#' * `not_found`: a well-formed name whose region is gone (its owner freed
#'   it or exited), or a reference to a published name nothing is published
#'   under any more.
#' * `out_of_sight`: the region's owner may be alive, but this process cannot
#'   see or inspect it (another user, another PID namespace, `/proc` mounted
#'   with `hidepid`).
#' * `other_host`: a reference made on another machine (or before a reboot).
#' * `corrupt`: region bytes, or a serialized reference, that fail
#'   validation.
#' * `truncated`: a published region cut short by another process.
#' * `no_space`: not enough memory, or room in `/dev/shm`, for a region.
#' * `limit`: a limit of mori's or of the system's (nesting depth, size,
#'   open descriptors, memory mappings).
#' * `name_taken`: `share(x, name = )` with a name already published.
#' * `bad_name`: a string that cannot name a published region.
#' * `bad_path`: an element path, node or slice that the (healthy) region
#'   does not have: an index past the end, or a path into an element that is
#'   not a list.
#' * `bad_argument`: an argument of the wrong type or shape; the message
#'   names the argument.
#' * `unrestorable`: an object kept as serialization bytes in a shared list
#'   (a function, an environment...) that R cannot unserialize in this
#'   process, for instance for want of a package.
#' * `system`: a system call failed unexpectedly.
#' * `internal`: a bug in mori.
#' * `interrupted`: a share interrupted while R held interrupts back (an
#'   interrupt R acts on is R's own `interrupt` condition, as always).
#'
#' @name mori_errors
#' @aliases mori_error
NULL

# Signals a mori error: the one place conditions are made, for R code and
# for the Rust side (src/rust/src/error.rs calls it with the error's kind,
# problem and hint). The call is the mori function that failed.
abort <- function(kind, problem, hint, call = sys.call(-1)) {
  stop(mori_condition(kind, problem, hint, call))
}

mori_condition <- function(kind, problem, hint, call = NULL) {
  structure(
    class = c(paste0("mori_error_", kind), "mori_error", "error", "condition"),
    list(message = paste0(problem, "\n", hint), call = call)
  )
}

# For tests only: signals the error kind "system" or "internal" as mori's
# real failures of that kind do (no ordinary input reaches them).
test_raise_kind <- function(kind) .Call(mori_test_raise_kind, kind)

# For tests only: after `after` more allocations of mori's Rust code, the
# next `count` fail as if memory had run out (count = 0 turns it off).
# Returns how many of the failures armed before did not happen.
test_fail_allocations <- function(after, count = 1) {
  .Call(mori_test_fail_allocations, as.double(after), as.double(count))
}
