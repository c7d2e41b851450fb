# Checks that every package the tests and benchmarks use is declared in
# DESCRIPTION, and that tests skip when an optional one is missing:
#   - a package named by `pkg::`, `pkg:::`, library(), require(),
#     requireNamespace(), loadNamespace() or skip_if_not_installed() in
#     tests/ or bench/ is a base package, mori, or in Depends, Imports or
#     Suggests (CI installs what Suggests names; R CMD check needs it there);
#   - in tests/testthat, each test_that() block that uses a suggested
#     package (other than testthat), itself or through the top-level
#     functions of its file and the helper files, names it in
#     skip_if_not_installed() or requireNamespace() there too, so a machine
#     without it skips that test instead of failing it.
#
#   Rscript tools/declared-packages.R [ROOT]   (default: the repository root)
#
# Prints each problem and a last line "declared-packages: N problems";
# exits 1 if N > 0.

args <- commandArgs(trailingOnly = TRUE)
root <- if (length(args)) args[1] else {
  here <- tryCatch(dirname(normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(), value = TRUE)))),
                   error = function(e) "tools")
  normalizePath(file.path(here, ".."))
}

declared <- function(root) {
  d <- read.dcf(file.path(root, "DESCRIPTION"), fields = c("Depends", "Imports", "Suggests"))
  fields <- lapply(d[1, ], function(f) {
    if (is.na(f)) return(character())
    parts <- trimws(strsplit(f, ",")[[1]])
    sub("\\s*\\(.*$", "", parts[nzchar(parts)])
  })
  list(all = unlist(fields, use.names = FALSE), suggests = fields$Suggests)
}

base_packages <- c("base", "compiler", "datasets", "graphics", "grDevices", "grid", "methods",
                   "parallel", "splines", "stats", "stats4", "tcltk", "tools", "utils")

# The packages an expression uses, and those it guards with
# skip_if_not_installed() or requireNamespace().
packages_in <- function(expr) {
  used <- character()
  guarded <- character()
  name_of <- function(arg) {
    if (is.character(arg) && length(arg) == 1) arg else if (is.symbol(arg)) as.character(arg) else NA
  }
  walk <- function(e) {
    if (!is.call(e)) return(invisible())
    f <- e[[1]]
    if (is.symbol(f)) {
      fn <- as.character(f)
      if (fn %in% c("::", ":::")) {
        used <<- c(used, name_of(e[[2]]))
        return(invisible())
      }
      if (fn %in% c("library", "require", "requireNamespace", "loadNamespace", "skip_if_not_installed") &&
          length(e) >= 2) {
        p <- name_of(e[[2]])
        used <<- c(used, p)
        if (fn %in% c("requireNamespace", "skip_if_not_installed")) guarded <<- c(guarded, p)
      }
    }
    for (a in as.list(e)) if (!missing(a)) walk(a)
  }
  walk(expr)
  list(used = unique(used[!is.na(used)]), guarded = unique(guarded[!is.na(guarded)]))
}

# Top-level pieces of a test file: test_that() blocks and function definitions.
test_blocks <- function(exprs) {
  tests <- list()
  helpers <- list()
  for (e in exprs) {
    if (!is.call(e)) next
    head <- if (is.symbol(e[[1]])) as.character(e[[1]]) else ""
    if (head == "test_that") {
      tests[[length(tests) + 1]] <- list(label = paste0("test_that(\"", e[[2]], "\")"), expr = e)
    } else if (head %in% c("<-", "=") && is.call(e[[3]]) && identical(e[[3]][[1]], as.symbol("function"))) {
      helpers[[as.character(e[[2]])]] <- e[[3]]
    }
  }
  list(tests = tests, helpers = helpers)
}

# What a test uses and guards, with what the helper functions it names use
# and guard (helpers that call helpers, followed to a fixed point).
with_helpers <- function(expr, helpers, seen = character()) {
  u <- packages_in(expr)
  for (h in setdiff(intersect(all.names(expr), names(helpers)), seen)) {
    seen <- c(seen, h)
    hu <- with_helpers(helpers[[h]], helpers, seen)
    u$used <- union(u$used, hu$used)
    u$guarded <- union(u$guarded, hu$guarded)
  }
  u
}

check <- function(root) {
  pk <- declared(root)
  optional <- setdiff(pk$suggests, "testthat")
  problems <- character()
  files <- list.files(file.path(root, c("tests", "bench")), pattern = "\\.[Rr]$",
                      recursive = TRUE, full.names = TRUE)
  parsed <- lapply(files, parse, keep.source = FALSE)
  rel <- substring(files, nchar(root) + 2)
  for (i in seq_along(files)) {
    used <- unique(unlist(lapply(parsed[[i]], function(e) packages_in(e)$used)))
    for (p in setdiff(used, c(pk$all, base_packages, "mori"))) {
      problems <- c(problems, sprintf("%s: uses %s, which DESCRIPTION does not declare", rel[i], p))
    }
  }
  # testthat sources every helper-*.R and then one test file
  in_tests <- startsWith(rel, "tests/testthat/")
  shared <- unlist(lapply(parsed[in_tests & grepl("/helper-[^/]*$", rel)],
                          function(x) test_blocks(x)$helpers), recursive = FALSE)
  for (i in which(in_tests & grepl("/test-[^/]*$", rel))) {
    b <- test_blocks(parsed[[i]])
    helpers <- c(b$helpers, shared)
    for (t in b$tests) {
      u <- with_helpers(t$expr, helpers)
      for (p in setdiff(intersect(u$used, optional), u$guarded)) {
        problems <- c(problems, sprintf("%s: %s uses %s without skip_if_not_installed(\"%s\")",
                                        rel[i], t$label, p, p))
      }
    }
  }
  problems
}

problems <- check(root)
if (length(problems)) writeLines(problems)
cat(sprintf("declared-packages: %d problems\n", length(problems)))
quit(status = length(problems) > 0)
