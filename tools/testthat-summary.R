# Runs tests/testthat against the installed package and ends with one line
# "<label>: N passed, N failed, N skipped"; exits non-zero on any failure.
args <- commandArgs(trailingOnly = TRUE)
label <- args[[1]]
.libPaths(c(args[[2]], .libPaths()))
library(testthat)
results <- as.data.frame(test_dir(".", package = "mori", load_package = "installed",
                                  stop_on_failure = FALSE, reporter = "summary"))
failed <- sum(results$failed) + sum(results$error)
line <- sprintf("%s: %d passed, %d failed, %d skipped", label, sum(results$passed), failed, sum(results$skipped))
cat("\n", line, "\n", sep = "")
summary_file <- Sys.getenv("MORI_SUMMARY_FILE")
if (nzchar(summary_file)) cat(line, "\n", sep = "", file = summary_file, append = TRUE)
quit(status = if (failed > 0) 1 else 0)
