# 10,000 share/rm/gc cycles over mixed objects (vectors, strings, lists,
# data frames, slices x[1:1e5], published regions, mapping by name);
# prints open descriptors, mori mappings (lines of /proc/self/maps that
# name a mori region) and RSS before, at the peak and after.
#
#   Rscript tools/reliability/leaks.R [cycles=10000] [lib]
args <- commandArgs(trailingOnly = TRUE)
cycles <- if (length(args) >= 1) as.integer(args[1]) else 10000L
if (length(args) >= 2) .libPaths(c(args[2], .libPaths()))
library(mori)

fds <- function() length(list.files("/proc/self/fd"))
maps <- function() sum(grepl("memfd:mori|/dev/shm/mori\\.", readLines("/proc/self/maps")))
rss <- function() as.numeric(sub("\\D+(\\d+).*", "\\1", grep("^VmRSS", readLines("/proc/self/status"), value = TRUE))) / 1024
state <- function() c(fds = fds(), mappings = maps(), rss_mb = round(rss(), 1))

set.seed(1)
big <- rnorm(2e5)
objs <- list(
  dbl = rnorm(1000), int = 1:1e4, lgl = c(TRUE, NA), chr = c("a", NA, "\u00e9", strrep("x", 100)),
  chr_big = as.character(1:5000), list = list(a = 1, b = list("x", 2L, NULL)), df = head(mtcars),
  iris = iris, factor = factor(c("u", "v", NA)), nested = list(list(list(1:3, letters))),
  fun_list = list(f = function(x) x, e = globalenv())
)
local({ x <- share(1); y <- map_shared(shared_name(x)); sum(x) }) # load everything once
invisible(gc())
before <- state()
peak <- before
t0 <- proc.time()[["elapsed"]]
for (i in seq_len(cycles)) {
  k <- (i - 1) %% length(objs) + 1
  s <- share(objs[[k]])
  b <- share(big)
  sl <- b[1:1e5]
  y <- map_shared(shared_name(b))
  chk <- sum(sl) + sum(y) + length(s)
  if (i %% 100 == 0) {
    nm <- sprintf("leaks%x_%d", Sys.getpid(), i)
    p <- share(objs[[k]], name = nm)
    q <- map_shared(nm)
    unshare(nm)
    rm(p, q)
  }
  if (is.list(s) && length(s)) z <- lapply(s, function(e) if (is.atomic(e)) e[] else e)
  rm(s, b, sl, y)
  if (exists("z")) rm(z)
  if (i %% 10 == 0) gc()
  if (i %% 1000 == 0) {
    now <- state()
    peak <- pmax(peak, now)
    cat(sprintf("cycle %5d: fds %d, mappings %d, RSS %.1f MB\n", i, now[1], now[2], now[3]))
  }
}
invisible(gc())
invisible(gc())
after <- state()
secs <- proc.time()[["elapsed"]] - t0
cat(sprintf("\n%d cycles in %.0f s\n", cycles, secs))
print(rbind(before = before, peak = peak, after = after))
cat(sprintf("descriptors back to baseline: %s; mappings back to baseline: %s; live regions: %d; RSS growth %.1f MB\n",
            after[["fds"]] == before[["fds"]], after[["mappings"]] == before[["mappings"]],
            nrow(shared_regions()), after[["rss_mb"]] - before[["rss_mb"]]))
