# Core operations under gctorture(TRUE): a garbage collection at every
# allocation, so an unprotected R object inside mori is freed under its feet
# and shows up as a wrong result, an error or a crash. Prints each check and
# the totals; exits with status 1 if any check fails.
#
#   Rscript tools/reliability/gctorture.R [lib]
args <- commandArgs(trailingOnly = TRUE)
if (length(args) >= 1) .libPaths(c(args[1], .libPaths()))
library(mori)
invisible(loadNamespace("rlang")) # for rlang::duplicate(); loading it under gctorture would take long
options(warn = 1)

dbl <- c(1.5, NA, 3, -Inf)
int <- setNames(1:6, letters[1:6])
chr <- c("a", NA, "\u00e9t\u00e9", "", strrep("z", 50))
lst <- list(a = 1:3, b = "x", c = list(d = 2.5, e = NULL, f = c("p", "q")))
df <- data.frame(n = c(1.5, 2.5, 3.5), s = c("u", "v", NA), f = factor(c("k", "l", "k")), stringsAsFactors = FALSE)
mat <- matrix(as.double(1:6), 2, dimnames = list(c("r1", "r2"), c("A", "B", "C")))
fac <- factor(c("lo", "hi", NA, "lo"), levels = c("lo", "hi"))
big <- as.double(1:5000)
pub <- sprintf("gct%x", Sys.getpid())

checks <- list(
  "share double" = function() identical(share(dbl), dbl),
  "share named integer" = function() identical(share(int), int),
  "share strings" = function() identical(share(chr), chr),
  "string elements" = function() { s <- share(chr); identical(s[3], chr[3]) && is.na(s[2]) && nchar(s[5]) == 50 },
  "paste over shared strings" = function() { s <- share(chr); identical(paste0(s, "!"), paste0(chr, "!")) },
  "share list" = function() identical(share(lst), lst),
  "nested element" = function() { l <- share(lst); identical(l$c$f, c("p", "q")) && identical(l[["c"]][["d"]], 2.5) },
  "lapply over list" = function() { l <- share(lst); identical(lapply(l, length), lapply(lst, length)) },
  "data frame" = function() identical(share(df), df),
  "data frame ops" = function() { d <- share(df); identical(d[d$f == "k", ], df[df$f == "k", ]) },
  "matrix attributes" = function() { m <- share(mat); identical(attributes(m), attributes(mat)) && identical(m["r2", "B"], 4) },
  "factor" = function() { f <- share(fac); identical(levels(f)[f], levels(fac)[fac]) },
  "serialize round trip" = function() { x <- share(lst); identical(unserialize(serialize(x, NULL)), lst) },
  "serialize strings" = function() { x <- share(chr); identical(unserialize(serialize(x, NULL)), chr) },
  "map_shared by name" = function() { x <- share(big); identical(map_shared(shared_name(x)), big) },
  "map_shared element path" = function() { l <- share(lst); identical(map_shared(shared_name(l$c$f)), c("p", "q")) },
  "slice view" = function() { x <- share(big); identical(x[101:200], big[101:200]) },
  "copy on write" = function() { x <- share(big); y <- x; y[1] <- -1; x[1] == 1 && y[1] == -1 && !is_shared(y) },
  "modify strings" = function() { x <- share(chr); x[1] <- "new"; identical(x[1], "new") && !is_shared(x) },
  "match via copied view" = function() { s <- share(chr); identical(match(s, chr), match(chr, chr)) && identical(s %in% "", chr %in% "") },
  "edit beside a copy" = function() {
    x <- share(chr); y <- rlang::duplicate(x, shallow = FALSE); x[1] <- "q"
    identical(y, chr) && identical(x[1], "q") && identical(x[-1], chr[-1])
  },
  "summaries" = function() { x <- share(big); sum(x) == sum(big) && max(x) == 5000 && !is.unsorted(x) },
  "published region" = function() {
    x <- share(lst, name = pub)
    y <- map_shared(pub)
    unshare(pub)
    identical(y, lst)
  },
  "shared_regions" = function() { x <- share(dbl); is.data.frame(shared_regions()) && is_shared(x) },
  "functions in lists" = function() { l <- share(list(f = function(z) z + 1, k = 2)); l$f(l$k) == 3 }
)

pass <- 0
fail <- 0
t0 <- proc.time()[["elapsed"]]
for (nm in names(checks)) {
  gctorture(TRUE)
  ok <- tryCatch(isTRUE(checks[[nm]]()), error = function(e) structure(FALSE, msg = conditionMessage(e)))
  gctorture(FALSE)
  cat(sprintf("%-28s %s%s\n", nm, if (ok) "ok" else "FAILED", if (!is.null(attr(ok, "msg"))) paste(":", attr(ok, "msg")) else ""))
  if (ok) pass <- pass + 1 else fail <- fail + 1
}
invisible(gc())
cat(sprintf("\ngctorture: %d checks passed, %d failed (%.0f s)\n", pass, fail, proc.time()[["elapsed"]] - t0))
quit(status = if (fail > 0) 1 else 0)
