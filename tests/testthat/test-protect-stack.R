# A full protect stack ends in R's clean error, never in a long jump over
# mori's Rust frames (I16). R signals "protect(): protection stack
# overflow" from inside PROTECT as an R error: mori makes every protect
# through R_UnwindProtect, so the Rust frames unwind (dropping what they own:
# a region's mapping and descriptor) before R's error goes on. The child
# runs with the smallest protect stack R allows (--max-ppsize=10000) and
# calls each operation under ever deeper nests of list() (one protect slot
# each), so that the stack runs out at every point of share(), map,
# unserialize, materialize and element reads; afterwards no region is left
# open and the process shares again.

# The child: each case swept over nesting depths just below the deepest at
# which plain R still fits a small allocation.
protect_stack_child <- c(
  "library(mori)",
  "options(expressions = 5e5)",
  "fds <- function() sum(grepl('memfd:mori|/dev/shm/mori', suppressWarnings(Sys.readlink(list.files('/proc/self/fd', full.names = TRUE)))))",
  "nest <- function(n, g) { e <- quote(g()); for (i in seq_len(n)) e <- call('list', e); eval(e) }",
  "fits <- function(n) tryCatch({ nest(n, function() length(list(1))); TRUE }, error = function(e) FALSE)",
  "lo <- 1000; hi <- 20000",
  "while (hi - lo > 1) { mid <- (lo + hi) %/% 2; if (fits(mid)) lo <- mid else hi <- mid }",
  "deep <- 1; for (i in 1:900) deep <- list(deep)",
  "wide <- as.list(seq_len(2e4))",
  "frame <- data.frame(a = seq_len(5e4), b = as.character(seq_len(5e4)))",
  "owner <- share(list(deep = deep, frame = frame, big = as.double(1:1e5)))",
  "name <- shared_name(owner)",
  "cases <- list(",
  "  share_deep = function() share(deep),",
  "  share_wide = function() share(wide),",
  "  share_frame = function() share(frame),",
  "  map = function() map_shared(name),",
  "  unserialize = function() unserialize(serialize(owner, NULL)),",
  "  materialize = function() materialize(owner),",
  "  elements = function() { x <- map_shared(name); c(x$frame$b[[77]], x$big[[5]]) }",
  ")",
  "for (nm in names(cases)) {",
  "  seen <- character()",
  "  for (n in seq(lo - 3000, lo, by = 25)) {",
  "    res <- tryCatch({ nest(n, cases[[nm]]); 'ok' }, error = function(e)",
  "      if (grepl('protect', conditionMessage(e))) 'protect' else paste('other:', conditionMessage(e)))",
  "    seen <- union(seen, res)",
  "  }",
  "  invisible(gc())",
  "  cat('case', nm, paste(sort(seen), collapse = ','), '\\n')",
  "}",
  "rm(owner); invisible(gc()); invisible(gc())",
  "cat('left', fds(), '\\n')",
  "cat('after', identical(share(deep), deep), '\\n')"
)

test_that("a full protect stack gives R's error and leaves no region open", {
  skip_on_cran()
  skip_without_memfd()
  script <- tempfile(fileext = ".R")
  on.exit(unlink(script))
  writeLines(protect_stack_child, script)
  # A large C stack, so the nesting runs out of protect slots first.
  cmd <- sprintf(
    "ulimit -s 1000000 2>/dev/null || ulimit -s unlimited; exec %s --vanilla --max-ppsize=10000 %s",
    shQuote(file.path(R.home("bin"), "Rscript")), shQuote(script)
  )
  out <- suppressWarnings(system2("bash", c("-c", shQuote(cmd)), stdout = TRUE, stderr = TRUE,
    env = paste0("R_LIBS=", shQuote(paste(.libPaths(), collapse = ":")))))
  expect_null(attr(out, "status"), label = paste(out, collapse = "\n"))
  cases <- grep("^case ", out, value = TRUE)
  expect_length(cases, 7)
  # Every case met the overflow somewhere in the sweep, and ended either
  # well or in R's protect error, nothing else.
  seen <- vapply(strsplit(trimws(cases), " "), `[`, "", 3)
  expect_true(all(seen == "ok,protect"), label = paste(cases, collapse = "; "))
  expect_identical(trimws(grep("^left ", out, value = TRUE)), "left 0")
  expect_identical(trimws(grep("^after ", out, value = TRUE)), "after TRUE")
})
