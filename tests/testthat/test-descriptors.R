# mori never takes R's last descriptors: each region costs one, and once only
# a reserve is left, share() and map_shared() refuse with an error that says
# how many are kept back, while R itself can still open files, connections
# and pipes. (Regions of up to 32 KB share packs, one descriptor for many:
# the child shares 40 KB vectors, one region and one descriptor each;
# test-packs.R shares 1e5 small ones under this limit.)

descriptor_child <- function(limit, ordinary, published, new_name) {
  code <- c(
    "library(mori)",
    "args <- commandArgs(TRUE)",
    "keep <- list(); err <- ''",
    "for (i in 1:100000) {",
    "  r <- tryCatch(share(rep(i + 0.5, 5000)), error = function(e) e)",
    "  if (inherits(r, 'error')) { err <- conditionMessage(r); break }",
    "  keep[[i]] <- r",
    "}",
    "cat('shared:', length(keep), '\\n')",
    "cat('error:', gsub('\\n', ' ', err), '\\n')",
    "opened <- tryCatch({",
    "  files <- replicate(40, tempfile())",
    "  cons <- lapply(files, file, open = 'w')",
    "  for (con in cons) writeLines('x', con)",
    "  for (con in cons) close(con)",
    "  saveRDS(1:3, files[1])",
    "  all(vapply(files[-1], function(f) identical(readLines(f), 'x'), logical(1))) &&",
    "    identical(readRDS(files[1]), 1:3) && identical(system('echo piped', intern = TRUE), 'piped')",
    "}, error = function(e) conditionMessage(e), warning = function(w) conditionMessage(w))",
    "cat('opened:', opened, '\\n')",
    "msg <- function(expr) tryCatch({ force(expr); 'no error' }, error = function(e) gsub('\\n', ' ', conditionMessage(e)))",
    "cat('map ordinary:', msg(map_shared(args[1])), '\\n')",
    "cat('map published:', msg(map_shared(args[2])), '\\n')",
    "cat('publish:', msg(share(1:3, name = args[3])), '\\n')",
    "cat('published file left:', file.exists(file.path('/dev/shm', paste0('mori.', args[3]))), '\\n')",
    "keep <- NULL; invisible(gc()); invisible(gc())",
    "cat('shares again:', is_shared(share(1:10 + 0.5)), '\\n')",
    "cat('limit:', system('ulimit -n', intern = TRUE), '\\n')"
  )
  script <- tempfile(fileext = ".R")
  on.exit(unlink(script))
  writeLines(code, script)
  rscript <- file.path(R.home("bin"), "Rscript")
  cmd <- sprintf(
    "ulimit -n %d && R_LIBS=%s exec %s --vanilla %s %s %s %s", limit,
    shQuote(paste(.libPaths(), collapse = ":")), shQuote(rscript), shQuote(script),
    shQuote(ordinary), shQuote(published), shQuote(new_name)
  )
  out <- suppressWarnings(system2("bash", c("-c", shQuote(cmd)), stdout = TRUE, stderr = TRUE))
  field <- function(key) {
    line <- grep(paste0("^", key, ": "), out, value = TRUE)
    if (length(line) != 1) stop("child output lacks '", key, "':\n", paste(out, collapse = "\n"))
    trimws(sub(paste0("^", key, ": "), "", line))
  }
  keys <- c("shared", "error", "opened", "map ordinary", "map published", "publish", "published file left", "shares again", "limit")
  setNames(lapply(keys, field), keys)
}

test_that("after mori's descriptor limit R can still open files, and the error says what is kept back", {
  skip_without_descriptors()
  ordinary <- share(c(1.5, 2.5))
  published_name <- paste0("fd-reserve-", Sys.getpid())
  on.exit(unshare(published_name), add = TRUE)
  published <- share(c(3.5, 4.5), name = published_name)
  new_name <- paste0("fd-reserve-new-", Sys.getpid())
  on.exit(unshare(new_name), add = TRUE)
  for (limit in c(256, 1000)) {
    reserve <- max(64, limit %/% 10)
    r <- descriptor_child(limit, shared_name(ordinary), published_name, new_name)
    expect_equal(r$limit, as.character(limit))
    shared <- as.integer(r$shared)
    # Everything up to the reserve (less what R itself holds) was used.
    expect_lte(shared, limit - reserve)
    expect_gt(shared, limit - reserve - 30)
    expect_match(r$error, "too many shared regions open", fixed = TRUE)
    expect_match(r$error, sprintf("keeps the last %d of the limit of %d descriptors", reserve, limit), fixed = TRUE)
    expect_identical(r$opened, "TRUE")
    expect_match(r$`map ordinary`, sprintf("keeps the last %d", reserve), fixed = TRUE)
    expect_match(r$`map published`, sprintf("keeps the last %d", reserve), fixed = TRUE)
    expect_match(r$publish, sprintf("keeps the last %d", reserve), fixed = TRUE)
    expect_identical(r$`published file left`, "FALSE")
    expect_false(file.exists(file.path("/dev/shm", paste0("mori.", new_name))))
    expect_identical(r$`shares again`, "TRUE")
  }
})

# Without mori's reserve (a limit of 200 leaves none), running out is still
# a clear error (rel_child(): helper-reliability.R).
test_that("running out of descriptors ends in a clear R error, not an abort", {
  skip_on_cran()
  res <- rel_child(c(
    "keep <- list(); r <- 'none'",
    # 40 KB each: a region and a descriptor apiece (smaller ones are packed)
    "r <- tryCatch({ for (i in 1:1000) keep[[i]] <- share(rep(c(i, 1), 2500)); 'no limit hit' }, error = function(e) conditionMessage(e))",
    "cat('N', length(keep), '\\n'); cat('MSG', r, '\\n')",
    "rm(keep); gc(); x <- share(1:10); cat('ALIVE', sum(x), '\\n')"
  ), prefix = "ulimit -n 200;")
  expect_equal(res$status, 0L)
  n <- as.numeric(sub("^N ", "", grep("^N ", res$out, value = TRUE)))
  expect_gt(n, 100)
  expect_lt(n, 200)
  expect_true(any(grepl("^MSG this process has too many shared regions open \\(one descriptor each; .*limit of 200 descriptors", res$out)))
  expect_true(any(grepl("^ALIVE 55", res$out)))
})
