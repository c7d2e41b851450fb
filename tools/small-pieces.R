# Checks that the code comes in small pieces (DESIGN.md, "Map of the
# code"): no source file over 500 lines and no function over 80 lines, in
# both Rust crates and in R/.
#
#   Rscript tools/small-pieces.R [DIR ...]   (default: both crates and R/)
#
# A Rust function runs from its `fn` line to its closing brace (comments and
# string literals do not count as braces); an R function from `function` to
# the end of its body, as R's parser sees it. Prints every piece over its
# limit and a last line "small-pieces: N over"; exits 1 if N > 0.

max_file <- 500
max_fn <- 80

args <- commandArgs(trailingOnly = TRUE)
if (length(args) == 0) {
  here <- tryCatch(dirname(normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(), value = TRUE)))),
                   error = function(e) "tools")
  root <- normalizePath(file.path(here, ".."))
  args <- file.path(root, c("src/rust/src", "src/rust/core/src", "R"))
}

# Rust text with comments, string and char literals blanked, newlines kept,
# so that line numbers still hold and no brace inside them counts.
blank_rust <- function(text) {
  pattern <- "(?s)//[^\n]*|/\\*.*?\\*/|r#*\"(?:.*?)\"#*|b?\"(\\\\.|[^\"\\\\])*\"|b?'(\\\\.|[^'\\\\])'"
  m <- gregexpr(pattern, text, perl = TRUE)
  regmatches(text, m) <- lapply(regmatches(text, m), function(s) gsub("[^\n]", " ", s))
  text
}

# Rust functions with a body: name, first line, line count.
rust_functions <- function(file) {
  text <- blank_rust(paste(readLines(file, warn = FALSE), collapse = "\n"))
  chars <- strsplit(text, "")[[1]]
  line_at <- cumsum(chars == "\n") + 1
  starts <- gregexpr("\\bfn\\s+[A-Za-z_][A-Za-z0-9_]*", text, perl = TRUE)[[1]]
  if (starts[1] < 0) return(NULL)
  names <- sub("^fn\\s+", "", regmatches(text, list(starts))[[1]])
  out <- NULL
  for (k in seq_along(starts)) {
    i <- starts[k]
    # the body opens at the first `{` outside parentheses; a `;` first
    # means a declaration without one (a trait or extern item)
    paren <- 0
    while (i <= length(chars)) {
      ch <- chars[i]
      if (ch == "(") paren <- paren + 1
      if (ch == ")") paren <- paren - 1
      if (paren == 0 && (ch == "{" || ch == ";")) break
      i <- i + 1
    }
    if (i > length(chars) || chars[i] == ";") next
    depth <- 0
    j <- i
    while (j <= length(chars)) {
      if (chars[j] == "{") depth <- depth + 1
      if (chars[j] == "}") { depth <- depth - 1; if (depth == 0) break }
      j <- j + 1
    }
    first <- line_at[starts[k]]
    out <- rbind(out, data.frame(name = names[k], line = first, lines = line_at[min(j, length(chars))] - first + 1))
  }
  out
}

# R functions: the name they are assigned to (or "<anonymous>"), first
# line, line count.
r_functions <- function(file) {
  pd <- utils::getParseData(parse(file, keep.source = TRUE))
  fns <- pd[pd$token == "FUNCTION", ]
  out <- NULL
  for (k in seq_len(nrow(fns))) {
    expr <- pd[pd$id == fns$parent[k], ]
    # `name <- function`: the assignment's first child names it
    up <- pd[pd$id == expr$parent, ]
    kids <- pd[pd$parent == up$id, ]
    name <- "<anonymous>"
    if (nrow(up) && any(kids$token %in% c("LEFT_ASSIGN", "EQ_ASSIGN"))) {
      sym <- pd[pd$parent == kids$id[1] & pd$token == "SYMBOL", "text"]
      if (length(sym)) name <- sym[1]
    }
    out <- rbind(out, data.frame(name = name, line = expr$line1, lines = expr$line2 - expr$line1 + 1))
  }
  out
}

over <- 0
for (dir in args) {
  files <- list.files(dir, pattern = "\\.(rs|R)$", recursive = TRUE, full.names = TRUE)
  for (file in files) {
    n <- length(readLines(file, warn = FALSE))
    if (n > max_file) {
      cat(sprintf("%s: %d lines (limit %d)\n", file, n, max_file))
      over <- over + 1
    }
    fns <- if (grepl("\\.rs$", file)) rust_functions(file) else r_functions(file)
    long <- fns[!is.null(fns) & fns$lines > max_fn, , drop = FALSE]
    for (r in seq_len(NROW(long))) {
      cat(sprintf("%s:%d: fn %s: %d lines (limit %d)\n", file, long$line[r], long$name[r], long$lines[r], max_fn))
      over <- over + 1
    }
  }
}
cat(sprintf("small-pieces: %d over\n", over))
if (over > 0) quit(status = 1)
