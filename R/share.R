#' Share an R object through shared memory
#'
#' `share()` writes `x` once into operating-system shared memory and returns
#' a view of it that reads straight from that memory. The view behaves like
#' `x` (`identical(share(x), x)` is `TRUE`), and serializes as a short
#' reference, so parallel workers that receive it map the same physical pages
#' instead of receiving a copy.
#'
#' Atomic vectors (logical, integer, double, complex, raw, character) with all
#' their attributes, lists, data frames and nested lists are shared.
#' Environments, functions, calls, symbols, formulas, pairlists, external
#' pointers, S4 objects and `NULL` are returned unchanged (never evaluated); inside a shared list they are kept as they
#' are in this process and restored as copies in other processes.
#'
#' The memory lives while the returned object, or anything taken from it, is
#' reachable in any process that has mapped it. Keep the object returned by
#' `share()` alive until every worker has received it: a worker that receives
#' the reference after the owner dropped it gets a "not found" error.
#'
#' Shared data is never altered: modifying a shared object gives the
#' modifying process its own copy of the pages it writes.
#'
#' With `name`, the region is *published*: any process of the same user on
#' this machine, related or not (Shiny or Plumber workers behind a
#' supervisor, say), opens it with `map_shared(name)`. A published region
#' outlives the process that made it: it lives until [unshare()] removes its
#' name (processes that mapped it keep reading it), [prune_shared()] removes
#' it after its creator has exited, or the machine reboots.
#'
#' A long share (gigabytes take seconds) stops at once when interrupted
#' (Ctrl-C), signalling R's usual interrupt condition, and leaves nothing
#' behind: no memory, no descriptor, and a chosen `name` free again; so does
#' any other failure. A share that runs longer than
#' `getOption("mori.progress_delay", 2)` seconds shows a progress bar (with
#' the cli package, else a message line) when `getOption("mori.progress")`
#' is `TRUE`; unset, it shows one in interactive sessions only.
#'
#' @param x An R object.
#' @param name `NULL`, or a name to publish the region under: 1 to 64
#'   letters, digits, `.`, `_` or `-`, starting with a letter or digit and not
#'   with `mori`. A name already taken is an error.
#' @return A shared version of `x`, or `x` itself when it cannot be shared or
#'   is shared already.
#' @seealso [map_shared()], [shared_name()], [is_shared()], [unshare()]
#' @examples
#' x <- share(rnorm(1e6))
#' mean(x)
#' length(serialize(x, NULL)) # a short reference, not 8 MB
#' is_shared(x)
#'
#' # Published under a name other processes can open
#' y <- share(mtcars, name = "example_mtcars")
#' identical(map_shared("example_mtcars"), mtcars)
#' unshare("example_mtcars")
#' @export
share <- function(x, name = NULL) {
  token <- enter_call()
  on.exit(leave_call(token))
  .Call(mori_share, x, name)
}

#' Remove the name of a published region
#'
#' After `unshare(name)`, `map_shared(name)` no longer finds the region and
#' the name can be used again. Objects that already read from the region keep
#' working; its memory is freed when the last of them is collected.
#'
#' @param name The name given to [share()].
#' @return Invisibly, `TRUE` if a region of that name existed.
#' @examples
#' x <- share(1:10, name = "example_unshare")
#' unshare("example_unshare")
#' @export
unshare <- function(name) {
  invisible(.Call(mori_unshare, name))
}

#' Map a shared object by name
#'
#' Opens the shared region called `name`, as returned by [shared_name()] or
#' given to `share(x, name = )`, from any process on the same machine run by
#' the same user, and returns the object (or, for a name with a path such as
#' `"/mori_1a2b_7_3[2,3]"`, the element at that 1-based path).
#'
#' @param name A region name.
#' @return The shared object, or `NULL` when `name` is not a mori name:
#'   anything but a single string, a malformed name, or a bare word (such as
#'   `"junk"`) that no region is published under. A well-formed `/mori_...`
#'   name whose region no longer exists is an error of class
#'   `mori_error_not_found`; a path past the end of a list, or into an element
#'   that is not a list, is an error of class `mori_error_bad_path` (see
#'   [mori_errors]).
#' @examples
#' x <- share(1:10)
#' y <- map_shared(shared_name(x))
#' identical(x, y)
#' map_shared("not a name")
#' map_shared("nothing_published_under_this")
#' @export
map_shared <- function(name) {
  token <- enter_call()
  on.exit(leave_call(token))
  .Call(mori_map_shared, name)
}

#' The name of a shared object
#'
#' @param x An R object.
#' @return The name of the shared region `x` reads from (with the 1-based path
#'   of `x` within it for an element of a shared list), or `NULL` if `x` is
#'   not shared.
#' @examples
#' x <- share(list(a = 1:3, b = letters))
#' shared_name(x)
#' shared_name(x$b)
#' shared_name(1:3)
#' @export
shared_name <- function(x) {
  .Call(mori_shared_name, x)
}

#' Is an object shared?
#'
#' @param x An R object.
#' @return `TRUE` if `x` reads from a shared region (and has not been
#'   modified), `FALSE` otherwise.
#' @examples
#' is_shared(share(rnorm(10)))
#' is_shared(rnorm(10))
#' @export
is_shared <- function(x) {
  .Call(mori_is_shared, x)
}

#' A plain copy of a shared object
#'
#' Returns `x` with every shared part replaced by an ordinary R vector:
#' values and attributes are the same, nothing reads from shared memory, and
#' the result serializes as data. Use it before `saveRDS()` (a shared object
#' saves only its reference, which means nothing once its region is gone) or
#' before sending data to another machine.
#'
#' @param x An R object.
#' @return A copy of `x` without shared parts (`x` itself if it has none).
#' @examples
#' x <- share(rnorm(5))
#' y <- materialize(x)
#' identical(x, y)
#' is_shared(y)
#' @export
materialize <- function(x) {
  .Call(mori_materialize, x)
}
