#' Remove shared regions left behind by processes that no longer exist
#'
#' mori keeps ordinary regions in anonymous memory that the kernel frees as
#' soon as no process uses it, so a crashed owner leaves nothing behind.
#' Published regions (`share(x, name = )`) are files in `/dev/shm` that
#' outlive their creator on purpose; `prune_shared()` removes those whose
#' creating process has exited. Regions of live processes are never touched,
#' and processes that mapped a removed region keep reading it.
#'
#' @return Invisibly, the names removed, or `NULL` if there were none.
#' @examples
#' prune_shared()
#' @export
prune_shared <- function() {
  invisible(.Call(mori_prune))
}

#' Shared regions open in this process
#'
#' @return A data frame with one row per region this process has mapped or
#'   created: its `name`, its size in `bytes`, and whether this process
#'   created it (`owner`).
#' @examples
#' x <- share(1:1e6)
#' shared_regions()
#' @export
shared_regions <- function() {
  cols <- .Call(mori_regions)
  data.frame(name = cols[[1]], bytes = cols[[2]], owner = cols[[3]])
}
