#' Describe how an object is shared
#'
#' `shared_info(x)` says whether `x` reads from a shared region, which one,
#' and how much of it this process has touched, without reading `x`'s
#' elements: describing a shared vector of a million strings makes none of
#' them. Its `format()` and `print()` methods give a short summary.
#'
#' A shared object itself prints exactly like the original: `print(x)` and
#' `format(x)` show its values, since a shared object is meant to be
#' indistinguishable from `x` (`identical(share(x), x)`), and base vectors
#' carry no class through which printing could say more. Use `shared_info()`
#' (or [shared_regions()] for every region) to see what is shared.
#'
#' @param x An R object.
#' @return An object of class `mori_info`, a list with `shared` (logical),
#'   `name` (as [shared_name()]), `type`, `length`, `region` (the region's
#'   name, size in `bytes`, `created`, `views` in this process, `owner`,
#'   `published`; `NULL` if not shared), `bytes` (the object's own data in
#'   the region), `made` (strings and lists: elements made as R objects in
#'   this process so far), `private` (a private copy of the data exists,
#'   after C code asked for a writable pointer) and `modified`. The last four
#'   are `NA` where they do not apply (objects that are plain R lists of
#'   shared elements, as lists are on R < 4.3).
#' @seealso [shared_regions()], [is_shared()], [memory_usage()]
#' @examples
#' x <- share(as.character(1:1e5))
#' shared_info(x)
#' invisible(x[1:10])
#' shared_info(x)$made
#' shared_info(1:3)
#' @export
shared_info <- function(x) {
  name <- shared_name(x)
  info <- list(shared = !is.null(name), name = name, type = typeof(x), class = class(x),
               length = length(x), region = NULL, bytes = NA_real_, made = NA_real_,
               private = NA, modified = NA)
  if (!is.null(name)) {
    regions <- shared_regions()
    row <- regions[regions$name == name_parts(name)[["base"]], , drop = FALSE]
    if (nrow(row) == 1) info$region <- as.list(row)
    state <- .Call(mori_view_state, x)
    if (!is.null(state)) {
      info[c("bytes", "made", "private", "modified")] <- state
    }
  }
  structure(info, class = "mori_info")
}

#' @rdname shared_info
#' @param ... Unused.
#' @export
format.mori_info <- function(x, ...) {
  cls <- paste(x$class, collapse = "/")
  kind <- if (cls %in% c("logical", "integer", "numeric", "complex", "character", "raw", "list")) x$type
          else paste(x$type, cls)
  what <- sprintf("%s, %s element%s", kind, format_count(x$length), if (x$length == 1) "" else "s")
  if (!isTRUE(x$shared)) {
    return(sprintf("<not shared: %s>", what))
  }
  lines <- sprintf("<shared %s>", what)
  lines <- c(lines, paste0("  name:   ", x$name))
  r <- x$region
  if (!is.null(r)) {
    lines <- c(lines, sprintf(
      "  region: %s, %s, created %s, %d view%s in this process%s%s",
      r$name, format_bytes(r$bytes), format(r$created, "%Y-%m-%d %H:%M:%S"), r$views,
      if (r$views == 1) "" else "s", if (isTRUE(r$owner)) ", made here" else "",
      if (isTRUE(r$published)) ", published" else ""
    ))
  }
  if (!is.na(x$bytes)) {
    data <- sprintf("  data:   %s in the region", format_bytes(x$bytes))
    if (!is.na(x$made)) {
      unit <- if (identical(x$type, "list")) "elements" else "strings"
      data <- sprintf("%s; %s of %s %s made in this process", data, format_count(x$made),
                      format_count(x$length), unit)
    } else if (isTRUE(x$modified)) {
      data <- paste0(data, "; modified here (private copy)")
    } else if (isTRUE(x$private)) {
      data <- paste0(data, "; private copy-on-write pages, unchanged")
    } else {
      data <- paste0(data, ", read in place")
    }
    lines <- c(lines, data)
  }
  lines
}

#' @rdname shared_info
#' @export
print.mori_info <- function(x, ...) {
  cat(format(x), sep = "\n")
  invisible(x)
}

format_count <- function(n) format(n, big.mark = ",", scientific = FALSE, trim = TRUE)

# Sizes in words, from the one formatter behind every message of mori
# (decimal units: 1 kB = 1000 bytes).
format_bytes <- function(bytes) .Call(mori_format_bytes, bytes)

# A region name's parts as mori's one name parser reads them (internal, also
# for tests): c(base = the name without path or slice, file = an anonymous
# region's memory file name, "" for a published one); NULL if `name` is not
# a well-formed name.
name_parts <- function(name) {
  parts <- .Call(mori_name_parts, name)
  if (!is.null(parts)) names(parts) <- c("base", "file")
  parts
}

# How the views read R's object fields (internal, for tests and CI):
# "direct" at the offsets verified when the package loaded, or "checked"
# through R's API, when R's layout differs or MORI_CHECKED_FIELDS=1 was set
# at load (DESIGN.md, "Strings and lists").
field_reads <- function() .Call(mori_field_reads)

# The region format's named fields (internal, for tests that edit a region's
# bytes): list(name = "header.node_count", ..., offset, size), offsets from
# the start of their record (header, node record, string entry, summaries).
layout_fields <- function() {
  f <- .Call(mori_layout_fields)
  names(f) <- c("name", "offset", "size")
  f
}
