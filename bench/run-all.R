# Runs every benchmark script in bench/, each in its own R process (so that
# one script's memory does not weigh on the next), one after the other.
#
# Usage: Rscript bench/run-all.R                 # all scripts
#        Rscript bench/run-all.R share-cost readonly-c   # some of them
# Environment variables (MORI_BENCH_MB, ...) are passed on to the scripts.

source(file.path(dirname(sub("^--file=", "", grep("^--file=", c(commandArgs(FALSE), "--file=bench/."), value = TRUE)[1L])), "common.R"))

scripts <- c("no-copy-on-read", "share-cost", "first-scan", "workers-memory", "readonly-c",
             "strings-and-frames", "frame-walks", "beyond", "seed-bootstrap")
want <- sub("\\.R$", "", commandArgs(TRUE))
if (length(want)) {
  bad <- setdiff(want, scripts)
  if (length(bad)) stop("unknown script(s): ", paste(bad, collapse = ", "))
  scripts <- want
}

rscript <- file.path(R.home("bin"), "Rscript")
status <- data.frame(script = scripts, exit = NA_integer_, seconds = NA_real_)
for (i in seq_along(scripts)) {
  path <- file.path(bench_dir, paste0(scripts[i], ".R"))
  cat("\n######## ", scripts[i], " ########\n", sep = "")
  t0 <- proc.time()[["elapsed"]]
  status$exit[i] <- system2(rscript, shQuote(path))
  status$seconds[i] <- round(proc.time()[["elapsed"]] - t0, 1)
}
cat("\n######## summary ########\n")
print(status, row.names = FALSE)
if (any(status$exit != 0)) quit(status = 1)
