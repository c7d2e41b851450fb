# How many shared objects can one process keep alive? Each live region costs
# one descriptor and one mapping, so the ceiling is the descriptor limit
# (mori raises the soft limit to the hard one when it loads) or
# vm.max_map_count, whichever comes first. Runs children under several
# `ulimit -n` settings, each sharing up to 100,000 small objects and keeping
# them all alive; prints how far each got, the error that stopped it (it must
# be a clean R error, not an abort) and whether the session still works.
#
#   Rscript tools/reliability/many-objects.R [lib]
args <- commandArgs(trailingOnly = TRUE)
lib <- if (length(args) >= 1) args[1] else dirname(find.package("mori"))
target <- 100000

child <- sprintf('
.libPaths(c("%s", .libPaths())); library(mori)
lim <- system("ulimit -n", intern = TRUE)
keep <- vector("list", %d)
t0 <- proc.time()[["elapsed"]]
n <- 0
msg <- tryCatch({
  for (i in seq_along(keep)) { keep[[i]] <- share(c(i, 0.5)); n <- i }
  "no error"
}, error = function(e) conditionMessage(e))
secs <- proc.time()[["elapsed"]] - t0
ok <- all(vapply(keep[seq_len(n)][c(1, n)], function(x) x[2] == 0.5, TRUE))
# Free a few so that /proc can be read (it needs descriptors too).
for (i in n - 0:19) keep[i] <- list(NULL)
invisible(gc())
fds <- length(list.files("/proc/self/fd")) + 20
maps <- length(readLines("/proc/self/maps")) + 20
rm(keep); gc()
x <- share(1:10)
cat(sprintf("RESULT|%%s|%%d|%%.1f|%%d|%%d|%%s|%%s|%%s\\n", lim, n, secs, fds, maps, ok, sum(x) == 55, gsub("\\n", " ", msg)))
', lib, target)
script <- tempfile(fileext = ".R")
writeLines(child, script)
rscript <- file.path(R.home("bin"), "Rscript")
cat(sprintf("hard descriptor limit here: %s; vm.max_map_count: %s\n\n", system("ulimit -Hn", intern = TRUE),
            readLines("/proc/sys/vm/max_map_count")))
settings <- c("(inherited)" = "", "ulimit -n 200" = "ulimit -n 200;", "ulimit -n 1048576" = "ulimit -n 1048576 2>/dev/null;")
for (s in names(settings)) {
  t0 <- proc.time()[["elapsed"]]
  out <- suppressWarnings(system2("sh", c("-c", shQuote(sprintf("%s exec %s --vanilla %s 2>&1", settings[[s]], rscript, script))),
                                  stdout = TRUE))
  status <- attr(out, "status")
  res <- grep("^RESULT", out, value = TRUE)
  cat(sprintf("== %s (exit status %s, %.0f s wall)\n", s, if (is.null(status)) 0 else status, proc.time()[["elapsed"]] - t0))
  if (!length(res)) {
    cat("  no result: the child died\n", paste(" ", tail(out, 5)), sep = "\n")
    next
  }
  f <- strsplit(res, "|", fixed = TRUE)[[1]]
  cat(sprintf("  soft limit in child before load %s; live shared objects reached %s in %s s (%.0f us each)\n",
              f[2], f[3], f[4], 1e6 * as.numeric(f[4]) / as.numeric(f[3])))
  cat(sprintf("  at the ceiling: %s descriptors, %s mappings; objects still readable: %s; session works after: %s\n",
              f[5], f[6], f[7], f[8]))
  cat(sprintf("  stopped by: %s\n", f[9]))
}
unlink(script)

# The mapping ceiling: descriptors cannot be raised past the hard limit
# without privileges, so reach vm.max_map_count with one region and many
# views that were written to (each gets a private copy-on-write mapping).
child2 <- sprintf('
.libPaths(c("%s", .libPaths())); library(mori)
x <- share(as.double(1:1e4)); nm <- shared_name(x)
keep <- vector("list", %d); n <- 0
t0 <- proc.time()[["elapsed"]]
msg <- tryCatch({
  for (i in seq_along(keep)) { y <- map_shared(nm); y[1] <- i; keep[[i]] <- y; n <- i }
  "no error"
}, error = function(e) conditionMessage(e))
secs <- proc.time()[["elapsed"]] - t0
keep[n - 0:200] <- list(NULL); rm(y); invisible(gc())
maps <- length(readLines("/proc/self/maps"))
z <- share(1:10)
cat(sprintf("RESULT|%%d|%%.1f|%%d|%%s|%%s\\n", n, secs, maps, sum(z) == 55 && keep[[1]][1] == 1 && x[1] == 1, gsub("\\n", " ", msg)))
', lib, target)
writeLines(child2, script)
out <- suppressWarnings(system2(rscript, c("--vanilla", script), stdout = TRUE, stderr = TRUE))
res <- grep("^RESULT", out, value = TRUE)
cat(sprintf("== written views of one region (exit status %s)\n", if (is.null(attr(out, "status"))) 0 else attr(out, "status")))
if (length(res)) {
  f <- strsplit(res, "|", fixed = TRUE)[[1]]
  cat(sprintf("  written views reached %s in %s s; mappings after freeing 200: %s; session works after: %s\n", f[2], f[3], f[4], f[5]))
  cat(sprintf("  stopped by: %s\n", f[6]))
} else {
  cat("  no result: the child died\n", paste(" ", tail(out, 5)), sep = "\n")
}
unlink(script)
