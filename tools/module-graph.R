# Checks that a crate's modules form one-way stacks: no module imports,
# directly or through others, a module that imports it. A module and its
# own children (and descendants) may use each other; siblings may not form a
# cycle, at any level. Every `crate::`, `super::` and `self::` path counts,
# in `use` trees and inline, outside comments.
#
#   Rscript tools/module-graph.R [SRC_DIR ...]   (default: both crates)
#
# Prints each crate's top-level modules in layers (a layer uses only the
# layers below it), every cycle found and a last line "module-graph: N
# cycles"; exits 1 if N > 0.

args <- commandArgs(trailingOnly = TRUE)
if (length(args) == 0) {
  here <- tryCatch(dirname(normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(), value = TRUE)))),
                   error = function(e) "tools")
  root <- normalizePath(file.path(here, ".."))
  args <- file.path(root, c("src/rust/src", "src/rust/core/src"))
}

# The module path of a source file, as a character vector ("" for the root).
module_of <- function(file) {
  parts <- strsplit(sub("\\.rs$", "", file), "/", fixed = TRUE)[[1]]
  last <- parts[length(parts)]
  if (last %in% c("mod", "lib", "main")) parts <- parts[-length(parts)]
  parts
}

# Source text without comments and string literals (a path in a doc
# comment or a message is no import).
strip <- function(lines) {
  text <- paste(lines, collapse = "\n")
  # One pass, left to right, so that whichever starts first wins ("//" in a
  # string, a quote in a comment).
  gsub("(?s)//[^\n]*|/\\*.*?\\*/|\"(\\\\.|[^\"\\\\])*\"|'(\\\\.|[^'\\\\])'", " ", text, perl = TRUE)
}

# Expands a `use` tree ("crate::{a, b::{c, d}}") into its paths.
expand_tree <- function(tree) {
  tree <- gsub("\\s+", "", tree)
  open <- regexpr("{", tree, fixed = TRUE)
  if (open < 0) return(sub("::self$", "", sub("\\bas\\b.*$", "", tree)))
  prefix <- substr(tree, 1, open - 1)
  inner <- substr(tree, open + 1, nchar(tree) - 1)
  # split inner on top-level commas
  chars <- strsplit(inner, "")[[1]]
  depth <- 0; start <- 1; items <- character()
  for (i in seq_along(chars)) {
    if (chars[i] == "{") depth <- depth + 1
    if (chars[i] == "}") depth <- depth - 1
    if (chars[i] == "," && depth == 0) {
      items <- c(items, substr(inner, start, i - 1)); start <- i + 1
    }
  }
  items <- c(items, substr(inner, start, nchar(inner)))
  items <- items[nzchar(items)]
  unlist(lapply(items, function(it) if (it == "self") sub("::$", "", prefix) else expand_tree(paste0(prefix, it))))
}

# Resolves a path written in module `from` to absolute segments.
resolve <- function(path, from) {
  segs <- strsplit(path, "::", fixed = TRUE)[[1]]
  base <- switch(segs[1], crate = character(), self = from, super = from, NULL)
  if (is.null(base)) return(NULL)
  while (length(segs) && segs[1] %in% c("crate", "self", "super")) {
    if (segs[1] == "super") base <- base[-length(base)]
    segs <- segs[-1]
  }
  c(base, segs)
}

check_crate <- function(src) {
  files <- list.files(src, pattern = "\\.rs$", recursive = TRUE)
  mods <- lapply(files, module_of)
  keys <- vapply(mods, paste, "", collapse = "::")
  edges <- list()
  for (k in seq_along(files)) {
    from <- mods[[k]]
    text <- strip(readLines(file.path(src, files[k]), warn = FALSE))
    uses <- regmatches(text, gregexpr("\\buse\\s+(crate|super|self)\\b[^;]*;", text, perl = TRUE))[[1]]
    paths <- unlist(lapply(sub(";$", "", sub("^use\\s+", "", uses)), expand_tree))
    text <- gsub("\\buse\\s+(crate|super|self)\\b[^;]*;", " ", text, perl = TRUE)
    inline <- regmatches(text, gregexpr("\\b(crate|super|self)(::[A-Za-z_][A-Za-z0-9_]*)+", text, perl = TRUE))[[1]]
    for (p in c(paths, inline)) {
      to <- resolve(p, from)
      if (is.null(to)) next
      # the longest prefix that is a module of this crate
      while (length(to) && !(paste(to, collapse = "::") %in% keys)) to <- to[-length(to)]
      n <- min(length(from), length(to))
      same <- if (n == 0) 0 else { d <- which(from[seq_len(n)] != to[seq_len(n)]); if (length(d)) d[1] - 1 else n }
      if (same == length(from) || same == length(to)) next # itself, an ancestor or a descendant
      level <- paste(from[seq_len(same)], collapse = "::")
      edges[[length(edges) + 1]] <- c(level, from[same + 1], to[same + 1])
    }
  }
  edges <- unique(do.call(rbind, edges))
  cycles <- 0
  for (level in unique(edges[, 1])) {
    e <- edges[edges[, 1] == level, , drop = FALSE]
    nodes <- unique(c(e[, 2], e[, 3]))
    # Layers: repeatedly take the nodes whose every import is already placed.
    placed <- character(); layers <- list(); left <- nodes
    repeat {
      ready <- left[vapply(left, function(m) all(e[e[, 2] == m, 3] %in% placed), TRUE)]
      if (!length(ready)) break
      layers[[length(layers) + 1]] <- sort(ready)
      placed <- c(placed, ready); left <- setdiff(left, ready)
    }
    where <- if (nzchar(level)) paste0(basename(dirname(src)), "/", level) else src
    if (!nzchar(level)) {
      cat(sprintf("%s: %d modules, %d imports between them; layers, bottom first:\n", src, length(nodes), nrow(e)))
      for (i in seq_along(layers)) cat(sprintf("  %d: %s\n", i, paste(layers[[i]], collapse = " ")))
    }
    if (length(left)) {
      # The strongly connected parts among what could not be placed.
      reach <- function(m) {
        seen <- m
        repeat {
          nxt <- setdiff(unique(e[e[, 2] %in% seen, 3]), seen)
          if (!length(nxt)) return(seen)
          seen <- c(seen, nxt)
        }
      }
      reached <- lapply(setNames(left, left), reach)
      done <- character()
      for (m in left) {
        if (m %in% done) next
        scc <- left[vapply(left, function(o) o %in% reached[[m]] && m %in% reached[[o]], TRUE)]
        done <- c(done, scc)
        if (length(scc) < 2) next
        cycles <- cycles + 1
        cat(sprintf("CYCLE in %s among: %s\n", where, paste(sort(scc), collapse = " ")))
        sub_e <- e[e[, 2] %in% scc & e[, 3] %in% scc, , drop = FALSE]
        for (i in seq_len(nrow(sub_e))) cat(sprintf("    %s -> %s\n", sub_e[i, 2], sub_e[i, 3]))
      }
    }
  }
  cycles
}

total <- sum(vapply(args, check_crate, 0))
cat(sprintf("module-graph: %d cycles\n", total))
if (total > 0) quit(status = 1)
