# Running out of space: a small /dev/shm, a memory cgroup, absurd sizes.
# Bigger runs and figures: tools/reliability/ (see its README.md).
# Shared helpers (rel_child(), rel_tag, ...): helper-reliability.R.

test_that("a published region larger than a small /dev/shm fails cleanly and leaves nothing", {
  skip_on_cran()
  out <- rel_in_private_shm("16m", c(
    "r <- tryCatch({ share(rnorm(1.3e7), name = 'big'); 'shared' }, error = function(e) conditionMessage(e))",
    "cat('MSG', r, '\\n')",
    "cat('LEFT', length(list.files('/dev/shm', all.files = TRUE, no.. = TRUE)), '\\n')",
    "x <- share(1:10, name = 'small'); unshare('small'); cat('ALIVE', sum(x), '\\n')"
  ))
  msg <- grep("^MSG", out, value = TRUE)
  expect_match(msg, "104.0 MB")
  expect_match(msg, "could not reserve")
  expect_match(msg, "No space left")
  expect_true(any(grepl("^LEFT 0", out)))
  expect_true(any(grepl("^ALIVE 55", out)))
})

test_that("a 64 MB /dev/shm (Docker's default) does not stop a 1 GB share()", {
  skip_on_cran()
  # POSIX shm regions (macOS's backend) are /dev/shm files themselves.
  skip_without_memfd()
  skip_if(mori:::available_mb() < 4000, "needs 4 GB of free memory")
  out <- rel_in_private_shm("64m", c(
    "x <- rep(1.5, 1.25e8)",
    "s <- share(x)",
    "cat('SIZE', sprintf('%.0f', shared_regions()$bytes), '\\n')",
    "cat('OK', identical(s, x), sum(s) == 1.875e8, '\\n')"
  ))
  expect_true(any(grepl("^OK TRUE TRUE", out)), info = paste(out, collapse = "\n"))
  size <- as.numeric(sub("^SIZE ", "", grep("^SIZE", out, value = TRUE)))
  expect_gt(size, 1e9)
})

# A memory cgroup limited to `max` for a child; NULL if none can be made.
# cgroup v2 at /sys/fs/cgroup, else v1 (a group nested in this process's).
rel_memory_cgroup <- function(max = "64M") {
  if (!rel_is_root()) return(NULL)
  v2 <- "/sys/fs/cgroup/cgroup.controllers"
  if (file.exists(v2) && grepl("memory", readLines(v2))) {
    dir <- file.path("/sys/fs/cgroup", paste0("mori-", rel_tag))
    if (!dir.create(dir, showWarnings = FALSE)) return(NULL)
    writeLines(max, file.path(dir, "memory.max"))
    writeLines("0", file.path(dir, "memory.swap.max"))
    return(list(dir = dir, oom = function() {
      ev <- readLines(file.path(dir, "memory.events"))
      as.numeric(sub("oom_kill ", "", grep("^oom_kill ", ev, value = TRUE)))
    }))
  }
  own <- sub("^[0-9]+:memory:", "", grep(":memory:", readLines("/proc/self/cgroup"), value = TRUE))
  base <- file.path("/sys/fs/cgroup/memory", own)
  if (!length(own) || !dir.exists(base)) return(NULL)
  dir <- file.path(base, paste0("mori-", rel_tag))
  if (!dir.exists(dir) && !dir.create(dir, showWarnings = FALSE)) return(NULL)
  ok <- tryCatch({
    writeLines(max, file.path(dir, "memory.limit_in_bytes"))
    TRUE
  }, error = function(e) FALSE, warning = function(w) FALSE)
  if (!ok) return(NULL)
  list(dir = dir, oom = function() {
    ev <- readLines(file.path(dir, "memory.oom_control"))
    as.numeric(sub("oom_kill ", "", grep("^oom_kill ", ev, value = TRUE)))
  })
}

test_that("share() of 100 MB in a 64 MB memory cgroup fails with a clear error, no OOM kill", {
  skip_without_cgroups()
  skip_on_cran()
  cg <- rel_memory_cgroup()
  skip_if(is.null(cg), "needs root and a writable memory cgroup")
  on.exit(unlink(cg$dir, recursive = FALSE, force = TRUE), add = TRUE)
  on.exit(system2("rmdir", cg$dir, stderr = FALSE), add = TRUE)
  res <- rel_child(c(
    "x <- seq_len(26e6)", # compact: 104 MB once shared, nothing in R's heap
    "r <- tryCatch({ share(x); 'shared' }, error = function(e) conditionMessage(e))",
    "cat('MSG', r, '\\n'); cat('ALIVE\\n')"
  ), prefix = sprintf("echo $$ > %s/cgroup.procs &&", cg$dir), timeout = 120)
  expect_equal(cg$oom(), 0)
  expect_equal(res$status, 0L)
  expect_true(any(grepl("^MSG could not reserve", res$out)))
  expect_true(any(grepl("^ALIVE", res$out)))
})

test_that("share(1:1e15) fails cleanly and fast", {
  skip_on_cran()
  full_gc() # earlier tests' garbage would close descriptors during the count
  fds <- rel_fds()
  t <- system.time(msg <- rel_err(share(1:1e15)))[["elapsed"]]
  expect_match(msg, "could not reserve 8000.0 TB")
  expect_lt(t, 2)
  t <- system.time(msg <- rel_err(share(list(a = 1, b = 1:1e15))))[["elapsed"]]
  expect_match(msg, "could not reserve")
  expect_lt(t, 2)
  msg <- rel_err(share(1:1e15, name = paste0(rel_tag, "_huge")))
  expect_match(msg, "could not reserve")
  expect_length(rel_shm(), 0)
  expect_equal(rel_fds(), fds)
})
