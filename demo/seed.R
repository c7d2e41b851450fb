# The seed scenario: a bootstrap over one big data frame in parallel workers,
# first sending the data frame itself, then sending share(data frame).
# Size: MORI_DEMO_ROWS rows x 5 double columns (default 2e6 rows = 80 MB).
library(mori)
library(mirai)

rows <- as.numeric(Sys.getenv("MORI_DEMO_ROWS", "2e6"))
workers <- as.integer(Sys.getenv("MORI_DEMO_WORKERS", "4"))

set.seed(42)
df <- as.data.frame(matrix(rnorm(rows * 5), ncol = 5))
shared_df <- share(df)
cat(sprintf("data: %d rows x 5 columns, %.0f MB; %d workers\n\n",
            nrow(df), object.size(df) / 1e6, workers))

# One bootstrap replicate of the column means. (The seed's
# colMeans(data[sample(nrow(data), replace = TRUE), ]) computes the same, but
# spends most of its time making 2e6 unique row names; bench/seed-bootstrap.R
# runs that exact form.)
boot <- function(data) {
  rows <- sample(nrow(data), replace = TRUE)
  means <- vapply(data, function(column) mean(column[rows]), numeric(1))
  smaps <- readLines("/proc/self/smaps_rollup")
  kb <- function(field) as.numeric(sub("^\\S+\\s+(\\d+).*$", "\\1", grep(paste0("^", field, ":"), smaps, value = TRUE)))
  list(means = means, pss_mb = kb("Pss") / 1024, private_mb = kb("Anonymous") / 1024)
}

run <- function(data) {
  daemons(workers)
  on.exit(daemons(0))
  everywhere(library(mori))
  bytes <- length(serialize(list(data = data), NULL))
  # boot and data are sent with each task (free variables of the function).
  time <- system.time(res <- mirai_map(seq_len(workers), function(i) boot(data),
                                       boot = boot, data = data)[])["elapsed"]
  stopifnot(all(vapply(res, function(r) all(abs(r$means) < 0.1), logical(1))))
  c(seconds = unname(time), bytes_per_task = bytes,
    worker_pss_mb = sum(vapply(res, `[[`, 0, "pss_mb")),
    worker_private_mb = sum(vapply(res, `[[`, 0, "private_mb")))
}

plain <- run(df)
shared <- run(shared_df)
fmt <- function(v, digits) formatC(v, format = "f", digits = digits, big.mark = ",")
table <- data.frame(
  measure = c("wall time (s)", "bytes sent per task", "workers' PSS, total (MB)",
              "workers' private memory, total (MB)"),
  without_share = c(fmt(plain[1], 2), fmt(plain[2], 0), fmt(plain[3:4], 0)),
  with_share = c(fmt(shared[1], 2), fmt(shared[2], 0), fmt(shared[3:4], 0)),
  ratio = paste0(fmt(plain / shared, 1), "x")
)
print(table, right = FALSE, row.names = FALSE)
