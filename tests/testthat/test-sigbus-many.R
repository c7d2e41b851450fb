# The SIGBUS guard has no ceiling (issue 17, item 4): a reader holding more
# mappings of a published region than the guard's first table chunk (4096)
# gets R errors when the file is truncated, never a bus error.

test_that("5,000 column mappings of a truncated published frame: R errors, no crash", {
  skip_without_sigbus()
  skip_on_cran()
  name <- sprintf("sigbus%x", Sys.getpid())
  path <- file.path("/dev/shm", paste0("mori.", name))
  on.exit(unlink(path), add = TRUE)
  code <- sprintf('
    library(mori)
    name <- "%s"
    # 5,000 columns of 2,100 doubles (16.8 KB: each gets a private mapping
    # of its own when C code asks for a writable pointer).
    df <- as.data.frame(matrix(as.double(seq_len(2100 * 5000)), 2100))
    x <- share(df, name = name)
    rm(df)
    y <- map_shared(name)
    v <- vapply(y, var, 0) # var() takes a writable pointer: one mapping per column
    maps <- sum(grepl("mori[.]", readLines("/proc/self/maps")))
    cat("MAPS", maps, "\\n")
    system2("truncate", c("-s", "0", "%s"))
    errs <- 0L
    wrong <- 0L
    for (i in seq_along(y)) {
      # y[[i]][[1]] reads through the column view\'s own private mapping.
      r <- tryCatch(y[[i]][[1]], error = function(e) NA)
      if (is.na(r)) errs <- errs + 1L else if (r != (i - 1) * 2100 + 1) wrong <- wrong + 1L
    }
    cat("ERRS", errs, "WRONG", wrong, "\\n")
    s <- vapply(seq_along(y), function(i) tryCatch(sum(y[[i]]), error = function(e) NA), 0)
    cat("SUMS_ERR", sum(is.na(s)), "\\n")
    cat("ALIVE\\n")
  ', name, path)
  script <- tempfile(fileext = ".R")
  writeLines(code, script)
  on.exit(unlink(script), add = TRUE)
  out <- suppressWarnings(system2(file.path(R.home("bin"), "Rscript"), c("--vanilla", script),
    stdout = TRUE, stderr = TRUE, env = paste0("R_LIBS=", paste(.libPaths(), collapse = ":"))))
  status <- attr(out, "status")
  expect_true(is.null(status) || status == 0, label = paste(out, collapse = "\n"))
  expect_true("ALIVE" %in% trimws(out), label = paste(tail(out, 5), collapse = "\n"))
  maps <- as.numeric(sub("^MAPS ", "", grep("^MAPS", out, value = TRUE)))
  expect_gt(maps, 5000)
  res <- grep("^ERRS", out, value = TRUE)
  expect_length(res, 1)
  expect_match(res, "^ERRS 5000 WRONG 0")
  # Summaries answered from the vanished metadata block are refused too.
  expect_true("SUMS_ERR 5000" %in% trimws(out), label = paste(tail(out, 5), collapse = "\n"))
})
