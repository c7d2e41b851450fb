# Fuzzes mori's readers from R with corrupted, truncated and random regions
# (see fuzz-lib.R) and prints the figures: cases, valid objects, clean
# errors, crashes (a callr child dying), mori panics turned into errors.
#
#   Rscript tools/reliability/fuzz-r.R [cases=10000] [lib]
#
# `lib` is a library holding the installed package (default: .libPaths()).
# Bytes that crashed a child are saved under tools/reliability/crashes/
# (not committed) with the case number.
args <- commandArgs(trailingOnly = TRUE)
n <- if (length(args) >= 1) as.integer(args[1]) else 10000L
lib <- if (length(args) >= 2) args[2] else dirname(find.package("mori"))
here <- dirname(normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(), value = TRUE))))
lib_file <- file.path(here, "fuzz-lib.R")
source(lib_file)
crash_dir <- file.path(here, "crashes")
dir.create(crash_dir, showWarnings = FALSE)
r <- fz_drive(n, lib, lib_file, crash_dir = crash_dir)
cat(sprintf("cases %d  valid %d  clean errors %d  crashes %d  mori panics (clean errors) %d  time %.0f s\n",
            r$cases, r$valid, r$errors, length(r$crashes), length(r$internal), r$seconds))
cat("\nby way of reading:\n")
print(r$by_mode)
cat("\nmost frequent error messages (numbers as N):\n")
m <- head(r$messages, 25)
cat(sprintf("%6d  %s\n", as.integer(m), names(m)), sep = "")
if (length(r$crashes)) {
  cat("\ncrashes (case: saved bytes):\n")
  for (c in r$crashes) cat(" ", c$case, ":", if (length(c$saved)) c$saved else "(no region file left: crash after reading)", "\n")
  cat("Replay one case in this process: Rscript -e 'library(mori); source(\"tools/reliability/fuzz-lib.R\");",
      "options(mori.materialize_own = FALSE); s <- fz_seeds(); t <- fz_ref_templates(17);",
      "l <- share(list(a = 1:10, b = letters)); fz_case(CASE, s, t, serialize(l$a, NULL))'\n")
}
if (length(r$internal)) cat("\ncases whose errors were mori panics:", r$internal, "\n")
