#' Remove shared regions left behind by processes that no longer exist
#'
#' mori keeps its regions in anonymous memory that the kernel frees as soon as
#' no process uses it, so a crashed owner normally leaves nothing behind.
#' `prune_shared()` removes what could still be left: `mori_*` files in
#' `/dev/shm` whose creating process is gone. Regions of live processes are
#' never touched.
#'
#' @return Invisibly, the names removed, or `NULL` if there were none.
#' @examples
#' prune_shared()
#' @export
prune_shared <- function() {
  dir <- "/dev/shm"
  files <- list.files(dir, pattern = "^mori_[0-9a-f]+_[0-9a-f]+$")
  pids <- strtoi(sub("^mori_([0-9a-f]+)_.*$", "\\1", files), 16L)
  gone <- files[!is.na(pids) & !dir.exists(file.path("/proc", pids))]
  removed <- gone[file.remove(file.path(dir, gone))]
  invisible(if (length(removed)) paste0("/", removed) else NULL)
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
