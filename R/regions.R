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
#'   created: its `name`, its size in `bytes`, the `type` of the object at its
#'   root, when it was `created`, how many R objects (`views`) read from it
#'   here, whether this process created it (`owner`), and whether it is
#'   `published` under a chosen name.
#' @examples
#' x <- share(1:1e6)
#' shared_regions()
#' @export
shared_regions <- function() {
  cols <- .Call(mori_regions)
  data.frame(
    name = cols[[1]], bytes = cols[[2]], type = cols[[3]],
    created = as.POSIXct(cols[[4]], origin = "1970-01-01"),
    views = cols[[5]], owner = cols[[6]], published = cols[[7]],
    stringsAsFactors = FALSE
  )
}

#' Memory used by shared data, per process
#'
#' Reads `/proc/<pid>/smaps` of each process and splits its memory into what
#' mori regions account for and the rest, so you can see the saving: with
#' sharing, `n` workers reading one dataset each count only `1/n` of it in
#' their proportional set size (PSS).
#'
#' @param pids Process ids (default: this process). Workers' ids come from,
#'   e.g., `mirai::everywhere(Sys.getpid())` or `parallel::clusterCall(cl,
#'   Sys.getpid)`.
#' @return A data frame with one row per process and sizes in MB: `rss` and
#'   `pss` (all memory), `shared_rss` and `shared_pss` (mori regions mapped
#'   by the process), and `private` (memory only this process has written:
#'   anonymous pages, including private copies of shared data).
#' @examples
#' x <- share(rnorm(1e6))
#' invisible(sum(x[]))
#' memory_usage()
#' @export
memory_usage <- function(pids = Sys.getpid()) {
  if (!is.numeric(pids) || anyNA(pids) || any(pids != trunc(pids)) || any(pids < 1)) {
    abort("bad_argument", "`pids` must be process ids: positive whole numbers",
          "Give Sys.getpid(), or the ids of the workers (parallel::clusterCall(cl, Sys.getpid)).")
  }
  rows <- lapply(as.integer(pids), function(pid) {
    lines <- tryCatch(readLines(sprintf("/proc/%d/smaps", pid)), error = function(e) character())
    if (!length(lines)) {
      return(data.frame(pid = pid, rss = NA_real_, pss = NA_real_, shared_rss = NA_real_,
                        shared_pss = NA_real_, private = NA_real_))
    }
    header <- grepl("^[0-9a-f]+-[0-9a-f]+ ", lines)
    mapping <- cumsum(header)
    path <- sub("^(\\S+\\s+){5}", "", lines[header])
    # memfd regions and packs; published regions; POSIX shm regions and
    # packs (the posix-shm backend: /mori_..., or hashed /mori~...)
    is_mori <- grepl("^/memfd:mori_|^/dev/shm/mori[._~]", path)
    kb <- function(field) {
      sel <- startsWith(lines, paste0(field, ":"))
      values <- as.numeric(sub("^\\S+\\s+(\\d+).*$", "\\1", lines[sel]))
      list(all = sum(values), mori = sum(values[is_mori[mapping[sel]]]))
    }
    rss <- kb("Rss")
    pss <- kb("Pss")
    data.frame(pid = pid, rss = rss$all / 1024, pss = pss$all / 1024,
               shared_rss = rss$mori / 1024, shared_pss = pss$mori / 1024,
               private = kb("Anonymous")$all / 1024)
  })
  do.call(rbind, rows)
}

# Free memory in MB (MemAvailable), for tests and benchmarks that need room.
available_mb <- function() {
  line <- grep("^MemAvailable:", readLines("/proc/meminfo"), value = TRUE)
  as.numeric(sub("^MemAvailable:\\s+(\\d+).*$", "\\1", line)) / 1024
}
