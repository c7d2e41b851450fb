# Reading a published region is race-free (issue 17, item 3).
#
# A published region is a plain file: another process of the same user can
# rewrite or truncate it while readers map and read it. Readers must then
# get R errors or the right values, never a crash; what they check (header,
# node table, a stored object's bytes, string entries) is copied or read
# once before it is checked and used.
#
# A bounded stress: reader processes loop map_shared() and element reads
# while a writer process corrupts and restores the header, node table and
# stored-object bytes, and truncates the file (to page boundaries) and
# writes it back. Each reader is its own process whose exit status is
# checked. A second round also writes garbage anywhere (string entries,
# data) and truncates at any length: values may then be wrong (the data
# itself was changed, or a cut inside the last page reads as zeros, see
# DESIGN.md), but nothing may crash.

pr_rscript <- function() file.path(R.home("bin"), "Rscript")

pr_script <- function(lines) {
  f <- tempfile(fileext = ".R")
  writeLines(lines, f)
  f
}

pr_reader <- c(
  "args <- commandArgs(TRUE)",
  "name <- args[1]; expected <- readRDS(args[2]); seconds <- as.numeric(args[3]); go <- args[4]",
  "library(mori)",
  "wait_until <- Sys.time() + 30",
  "while (!file.exists(go) && Sys.time() < wait_until) Sys.sleep(0.05)", # the writer is ready
  "verdict <- function() {",
  "  x <- map_shared(name)",
  "  got <- list(",
  "    d = x$d[c(1, 500, 1e5)], dsum = sum(x$d), s = x$s[c(1, 77, 5000)], sn = names(x$s)[c(3, 4999)],",
  "    f = as.character(x$f[c(1, 2, 3)]), lv = levels(x$f), fun = body(x$fun), fo = deparse(x$fo),",
  "    l = x$l[[2]]$b, i = x$i[c(7, 1e4)], env = sum(x$env$v), env_class = class(x$env)",
  "  )",
  "  if (identical(got, expected)) 'ok' else paste('wrong', paste(names(got)[!mapply(identical, got, expected)], collapse = ','))",
  "}",
  "counts <- c(ok = 0, error = 0, wrong = 0)",
  "wrong <- character()",
  "end <- Sys.time() + seconds; hard_end <- Sys.time() + 45",
  "n <- 0",
  "# At least `seconds`, and at least 30 reads however loaded the machine is.",
  "while ((Sys.time() < end || n < 30) && n < 5000 && Sys.time() < hard_end) {",
  "  n <- n + 1",
  "  v <- tryCatch(verdict(), error = function(e) 'error')",
  "  k <- if (startsWith(v, 'wrong')) 'wrong' else v",
  "  counts[k] <- counts[k] + 1",
  "  if (k == 'wrong') wrong <- c(wrong, v)",
  "  if (n %% 2 == 0) invisible(gc()) # drop the mapping: the next map_shared() parses afresh",
  "}",
  "cat('COUNTS', counts, '\\n')",
  "cat('WRONG', unique(wrong), '\\n')",
  "cat('DONE\\n')"
)

pr_writer <- c(
  "args <- commandArgs(TRUE)",
  "path <- args[1]; seconds <- as.numeric(args[2]); anything <- args[3] == 'anything'; go <- args[4]",
  # (only if it must: a POSIX shm reader refuses an object no longer 0400)
  "if (file.access(path, 2) != 0) Sys.chmod(path, '600')",
  "orig <- readBin(path, 'raw', file.size(path))",
  "n <- length(orig)",
  # the header's layout, from the package's own field table (helper-region-bytes.R)
  sprintf("header_size <- %d; node_size <- %d; count_at <- %d", region_header_size(), region_node_size(),
          region_field("header.node_count")$offset),
  "nodes <- sum(as.integer(orig[count_at + 1:4]) * 256^(0:3))",
  "table_end <- header_size + node_size * nodes",
  "# The stored objects (R serialization: 'X\\n', version 3).",
  "magic <- as.raw(c(0x58, 0x0a, 0, 0, 0, 3))",
  "stored <- grepRaw(magic, orig, fixed = TRUE, all = TRUE)",
  "poke <- function(at, bytes) {",
  "  con <- file(path, 'r+b'); on.exit(close(con))",
  "  seek(con, at - 1, rw = 'write'); writeBin(bytes, con)",
  "}",
  "rewrite <- function(len) {",
  "  con <- file(path, 'wb'); writeBin(orig[seq_len(len)], con); close(con)",
  "}",
  "page <- 4096",
  "# The largest stored object (an environment holding 1e5 doubles): its bytes",
  "# are hammered, flipped and restored many times a millisecond, so that a",
  "# reader that checked them before copying would copy other bytes.",
  "gaps <- diff(c(stored, n))",
  "big <- if (length(stored)) c(stored[which.max(gaps)], max(gaps)) else c(1, n)",
  "hammer <- function() {",
  "  con <- file(path, 'r+b'); on.exit(close(con))",
  "  at <- big[1] + sample.int(as.integer(big[2] * 0.9), 1)",
  "  for (j in 1:300) {",
  "    seek(con, at - 1, rw = 'write'); writeBin(as.raw(sample.int(256, 1) - 1), con); flush(con)",
  "    seek(con, at - 1, rw = 'write'); writeBin(orig[at], con); flush(con)",
  "  }",
  "}",
  "ops <- c(header = 0, table = 0, stored = 0, truncate = 0, hammer = 0, anywhere = 0, cut = 0)",
  "file.create(go)", # the readers start now
  "end <- Sys.time() + seconds; hard_end <- Sys.time() + 45",
  "# At least `seconds`, and at least 60 operations however loaded the machine is.",
  "while ((Sys.time() < end || sum(ops) < 60) && Sys.time() < hard_end) {",
  "  modes <- c('header', 'table', 'stored', 'truncate', 'hammer', if (anything) c('anywhere', 'cut'))",
  "  mode <- sample(modes, 1)",
  "  at <- switch(mode, header = sample.int(header_size, 1), table = sample((header_size + 1):table_end, 1),",
  "    stored = if (length(stored)) sample(stored, 1) + sample.int(40, 1) - 1 else sample.int(n, 1),",
  "    anywhere = sample.int(n, 1), NA)",
  "  if (mode == 'hammer') {",
  "    hammer()",
  "  } else if (mode %in% c('truncate', 'cut')) {",
  "    len <- if (mode == 'truncate') page * sample(0:(n %/% page), 1) else sample(0:(n - 1), 1)",
  "    rewrite(len)",
  "    Sys.sleep(runif(1, 0, 0.01))",
  "    rewrite(n)",
  "  } else {",
  "    k <- min(sample.int(16, 1), n - at + 1)",
  "    poke(at, as.raw(sample.int(256, k, replace = TRUE) - 1))",
  "    Sys.sleep(runif(1, 0, 0.01))",
  "    if (!anything || runif(1) < 0.7) poke(at, orig[at:(at + k - 1)])",
  "    Sys.sleep(runif(1, 0, 0.01))",
  "  }",
  "  ops[mode] <- ops[mode] + 1",
  "}",
  "rewrite(n)",
  "cat('OPS', ops, '\\n')",
  "cat('DONE\\n')"
)

# Runs `readers` reader processes and one writer for `seconds`; returns the
# readers' exit statuses and outputs and the writer's output.
pr_round <- function(name, path, expected_file, seconds, anything, readers = 2) {
  skip_if_not_installed("processx")
  env <- c(R_LIBS = paste(.libPaths(), collapse = ":"))
  rs <- pr_script(pr_reader)
  ws <- pr_script(pr_writer)
  go <- tempfile()
  on.exit(unlink(c(rs, ws, go)))
  procs <- lapply(seq_len(readers), function(i) {
    processx::process$new(pr_rscript(), c("--vanilla", rs, name, expected_file, seconds, go),
      stdout = "|", stderr = "2>&1", env = c("current", env))
  })
  writer <- processx::process$new(pr_rscript(),
    c("--vanilla", ws, path, seconds, if (anything) "anything" else "safe", go),
    stdout = "|", stderr = "2>&1", env = c("current", env))
  collect <- function(p) {
    p$wait(60 * 1000)
    hung <- p$is_alive()
    if (hung) p$kill()
    out <- tryCatch(p$read_all_output_lines(), error = function(e) character())
    list(status = if (hung) "hung" else p$get_exit_status(), out = out)
  }
  list(readers = lapply(procs, collect), writer = collect(writer))
}

pr_counts <- function(r) {
  line <- grep("^COUNTS", r$out, value = TRUE)
  if (length(line) != 1) return(c(ok = NA, error = NA, wrong = NA))
  setNames(as.numeric(strsplit(sub("^COUNTS ", "", trimws(line)), " ")[[1]]), c("ok", "error", "wrong"))
}

test_that("readers looping while another process rewrites and truncates a published region: no crash, no wrong value", {
  skip_on_cran()
  skip_if_not_installed("processx")
  # With the posix-shm backend readers refuse a region whose mode is no
  # longer 0400: a writer that must chmod it first (not root) meets no reader.
  skip_if(region_backend() == "posix-shm" && !identical(unname(Sys.info()[["effective_user"]]), "root"),
          "readers refuse a shm object made writable again")
  name <- sprintf("race%x", Sys.getpid())
  path <- file.path("/dev/shm", paste0("mori.", name))
  set.seed(17)
  obj <- list(
    d = rnorm(1e5),
    s = setNames(paste0("s", 1:5000), paste0("n", 1:5000)),
    f = factor(c("lo", "hi", "lo", NA)),
    fun = function(a) a + 1,
    fo = y ~ x + z,
    l = list(1, list(a = 2, b = letters)),
    i = 1:1e4,
    env = local({
      e <- new.env()
      e$v <- rnorm(1e5)
      e
    })
  )
  x <- share(obj, name = name)
  on.exit(unshare(name), add = TRUE)
  expected <- list(
    d = obj$d[c(1, 500, 1e5)], dsum = sum(obj$d), s = obj$s[c(1, 77, 5000)], sn = names(obj$s)[c(3, 4999)],
    f = as.character(obj$f[1:3]), lv = levels(obj$f), fun = body(obj$fun), fo = deparse(obj$fo),
    l = obj$l[[2]]$b, i = obj$i[c(7, 1e4)], env = sum(obj$env$v), env_class = class(obj$env)
  )
  expected_file <- tempfile(fileext = ".rds")
  saveRDS(expected, expected_file)
  on.exit(unlink(expected_file), add = TRUE)

  # Round 1: header, node table and stored-object bytes corrupted and
  # restored, the file truncated to page boundaries and written back.
  r1 <- pr_round(name, path, expected_file, seconds = 5, anything = FALSE)
  expect_match(paste(r1$writer$out, collapse = " "), "DONE", label = paste(r1$writer$out, collapse = "\n"))
  ops <- as.numeric(strsplit(sub("^OPS ", "", trimws(grep("^OPS", r1$writer$out, value = TRUE))), " ")[[1]])
  expect_gt(sum(ops), 50)
  for (r in r1$readers) {
    out <- paste(r$out, collapse = "\n")
    expect_equal(r$status, 0, label = out)
    expect_true("DONE" %in% trimws(r$out), label = out)
    counts <- pr_counts(r)
    expect_gt(counts[["ok"]] + counts[["error"]], 20, label = out)
    expect_equal(counts[["wrong"]], 0, label = out)
  }
  # Both outcomes were seen: the writer really did get in the readers' way.
  all1 <- Reduce(`+`, lapply(r1$readers, pr_counts))
  expect_gt(all1[["error"]], 0)
  expect_gt(all1[["ok"]], 0)

  # Round 2: garbage anywhere, cuts at any length: no crash.
  r2 <- pr_round(name, path, expected_file, seconds = 4, anything = TRUE)
  expect_match(paste(r2$writer$out, collapse = " "), "DONE", label = paste(r2$writer$out, collapse = "\n"))
  for (r in r2$readers) {
    out <- paste(r$out, collapse = "\n")
    expect_equal(r$status, 0, label = out)
    expect_true("DONE" %in% trimws(r$out), label = out)
    expect_false(is.na(pr_counts(r)[["ok"]]), label = out)
  }
  all2 <- Reduce(`+`, lapply(r2$readers, pr_counts))
  message(sprintf("published-races: round 1 %d ok / %d errors / %d wrong; round 2 %d ok / %d errors / %d wrong",
                  all1[["ok"]], all1[["error"]], all1[["wrong"]], all2[["ok"]], all2[["error"]], all2[["wrong"]]))
})

# share() of a view of a published region copies data its owner may be
# rewriting: the summaries stored with the copy (sum, min, max, kept for
# O(1) answers) must describe the bytes copied, not a second read of the
# source. A writer process flips the published data between all 1s and all
# 2s while this process shares the view again and again (a wrapper with an
# attribute of its own, so share() copies it) and compares the stored
# summaries with those R computes from the copy's data. 1e5 doubles are
# summarised as they are copied; 1e6 (8 MB) on a second thread.
pr_flipper <- c(
  "args <- commandArgs(TRUE)",
  "path <- args[1]; n <- as.numeric(args[2]); go <- args[3]; stop_file <- args[4]",
  "if (file.access(path, 2) != 0) Sys.chmod(path, '600')",
  "bytes <- readBin(path, 'raw', file.size(path))",
  "at <- grepRaw(writeBin(rep(1, 8), raw()), bytes, fixed = TRUE)",
  "values <- list(writeBin(rep(2, n), raw()), writeBin(rep(1, n), raw()))",
  "con <- file(path, 'r+b')",
  "file.create(go)",
  "flips <- 0",
  "end <- Sys.time() + 60",
  "while (!file.exists(stop_file) && Sys.time() < end) {",
  "  flips <- flips + 1",
  "  seek(con, at - 1, rw = 'write'); writeBin(values[[flips %% 2 + 1]], con); flush(con)",
  "}",
  "close(con)",
  "cat('FLIPS', flips, '\\n')"
)

test_that("share() of a published view being rewritten stores the summaries of what it copied", {
  skip_on_cran()
  skip_if_not_installed("processx")
  skip_if(region_backend() == "posix-shm" && !identical(unname(Sys.info()[["effective_user"]]), "root"),
          "readers refuse a shm object made writable again")
  for (n in c(1e5, 1e6)) {
    name <- sprintf("resum%x%d", Sys.getpid(), as.integer(log10(n)))
    path <- file.path("/dev/shm", paste0("mori.", name))
    owner <- share(rep(1, n), name = name)
    skip_if_not(file.exists(path), "published regions are not /dev/shm files here")
    x <- map_shared(name)
    ws <- pr_script(pr_flipper)
    go <- tempfile()
    stop_file <- tempfile()
    writer <- processx::process$new(pr_rscript(), c("--vanilla", ws, path, n, go, stop_file),
      stdout = "|", stderr = "2>&1")
    wait_until <- Sys.time() + 30
    while (!file.exists(go) && Sys.time() < wait_until) Sys.sleep(0.05)
    shares <- 0
    wrong <- character()
    end <- Sys.time() + 4
    while ((Sys.time() < end || shares < 20) && shares < 2000) {
      shares <- shares + 1
      y <- share(structure(x, copy = shares))
      data <- y + 0 # the copy's values, summarised by R
      stored <- c(sum = sum(y), min = min(y), max = max(y))
      computed <- c(sum = sum(data), min = min(data), max = max(data))
      if (!identical(stored, computed)) wrong <- c(wrong, paste(names(stored)[stored != computed], collapse = ","))
    }
    file.create(stop_file)
    writer$wait(30 * 1000)
    flips <- as.numeric(sub("^FLIPS ", "", grep("^FLIPS", writer$read_all_output_lines(), value = TRUE)))
    unlink(c(ws, go, stop_file))
    expect_gt(flips, 0, label = paste(n, "flips"))
    expect_gt(shares, 0)
    expect_identical(wrong, character(), label = paste(n, "doubles: shares whose stored summaries differ from their data"))
    rm(owner, x, y, data)
    invisible(unshare(name))
  }
})

# The same race for the other summarised types and for strings. A writer
# process cycles bytes at a given offset of a published file through given
# states (list(at = 0-based offset, states = list of raw vectors), read
# from an .rds file) until told to stop.
pr_cycler <- c(
  "args <- commandArgs(TRUE)",
  "path <- args[1]; spec <- readRDS(args[2]); go <- args[3]; stop_file <- args[4]",
  "if (file.access(path, 2) != 0) Sys.chmod(path, '600')",
  "con <- file(path, 'r+b')",
  "file.create(go)",
  "flips <- 0",
  "end <- Sys.time() + 60",
  "while (!file.exists(stop_file) && Sys.time() < end) {",
  "  flips <- flips + 1",
  "  seek(con, spec$at, rw = 'write'); writeBin(spec$states[[flips %% length(spec$states) + 1]], con); flush(con)",
  "}",
  "close(con)",
  "cat('FLIPS', flips, '\\n')"
)

# Publishes `value` as `name`, starts the cycler on the bytes `spec(bytes)`
# names (bytes: the published file), and calls `check(x, i)` on the view
# `x` for a few seconds (at least 20 times); returns the check results (a
# character vector each, empty when right) and the writer's flip count.
pr_cycle_round <- function(name, value, spec, check, seconds = 2) {
  path <- file.path("/dev/shm", paste0("mori.", name))
  owner <- share(value, name = name)
  on.exit(invisible(unshare(name)), add = TRUE)
  skip_if_not(file.exists(path), "published regions are not /dev/shm files here")
  x <- map_shared(name)
  spec_file <- tempfile(fileext = ".rds")
  saveRDS(spec(region_read(path)), spec_file)
  ws <- pr_script(pr_cycler)
  go <- tempfile()
  stop_file <- tempfile()
  on.exit(unlink(c(spec_file, ws, go, stop_file)), add = TRUE)
  writer <- processx::process$new(pr_rscript(), c("--vanilla", ws, path, spec_file, go, stop_file),
    stdout = "|", stderr = "2>&1")
  on.exit(if (writer$is_alive()) writer$kill(), add = TRUE)
  wait_until <- Sys.time() + 30
  while (!file.exists(go) && Sys.time() < wait_until && writer$is_alive()) Sys.sleep(0.05)
  results <- list()
  end <- Sys.time() + seconds
  i <- 0
  while ((Sys.time() < end || i < 20) && i < 2000) {
    i <- i + 1
    results[[i]] <- check(x, i)
  }
  file.create(stop_file)
  writer$wait(30 * 1000)
  out <- writer$read_all_output_lines()
  flips <- as.numeric(sub("^FLIPS ", "", grep("^FLIPS", out, value = TRUE)))
  list(results = as.character(unlist(results)), shares = i, flips = if (length(flips)) flips else 0)
}

# The summaries share() stores for a copy (sum, min, max, anyNA, sortedness)
# against those R computes from the copy's elements (as doubles: no stored
# value can answer for a fresh vector).
pr_summaries_differ <- function(y) {
  data <- y + 0 # as doubles, from the copy's elements
  stored <- list(sum = as.numeric(sum(y)), min = as.numeric(min(y)), max = as.numeric(max(y)),
                 anyNA = anyNA(y), unsorted = is.unsorted(y))
  computed <- list(sum = sum(data), min = min(data), max = max(data),
                   anyNA = anyNA(data), unsorted = is.unsorted(data))
  names(stored)[!mapply(identical, stored, computed)]
}

test_that("share() of a published integer or logical view being rewritten stores the summaries of what it copied", {
  skip_on_cran()
  skip_if_not_installed("processx")
  skip_if(region_backend() == "posix-shm" && !identical(unname(Sys.info()[["effective_user"]]), "root"),
          "readers refuse a shm object made writable again")
  # 1e5 elements are summarised as they are copied, 2e6 (8 MB) on a second
  # thread. The writer cycles the data through three states, one all NA.
  states <- list(integer = c(1L, 2L, NA), logical = c(TRUE, FALSE, NA))
  for (type in names(states)) for (n in c(1e5, 2e6)) {
    s <- states[[type]]
    name <- sprintf("resum%x%s%d", Sys.getpid(), substr(type, 1, 3), as.integer(log10(n)))
    spec <- function(bytes) {
      at <- grepRaw(writeBin(rep(as.integer(s[1]), 8), raw()), bytes, fixed = TRUE)
      list(at = at - 1, states = lapply(s[c(2, 3, 1)], function(v) writeBin(rep(as.integer(v), n), raw())))
    }
    r <- pr_cycle_round(name, rep(s[1], n), spec, function(x, i) {
      pr_summaries_differ(share(structure(x, copy = i)))
    }, seconds = 3)
    label <- paste(n, type)
    expect_gt(r$flips, 0, label = paste(label, "flips"))
    expect_gt(r$shares, 0)
    expect_identical(r$results, character(), label = paste(label, "s: shares whose stored summaries differ from their data"))
  }
})

test_that("share() of a published character view whose NAs come and go: anyNA() of each copy matches its elements", {
  skip_on_cran()
  skip_if_not_installed("processx")
  skip_if(region_backend() == "posix-shm" && !identical(unname(Sys.info()[["effective_user"]]), "root"),
          "readers refuse a shm object made writable again")
  n <- 1e5
  name <- sprintf("resna%x", Sys.getpid())
  # The string entries of rep("a", n) (one text, n entries pointing at it,
  # at the node's aux offset) flip between "a" and NA entries.
  spec <- function(bytes) {
    at <- region_get(bytes, "node.aux_off", node = 0)
    entry_a <- bytes[at + seq_len(16)]
    entry_na <- region_put_uint(as.raw(integer(16)), region_field("string.flags")$offset,
                                region_field("string.flags")$size, 1)
    list(at = at, states = list(rep(entry_na, n), rep(entry_a, n)))
  }
  seen <- c(ok = 0, changed = 0, with_na = 0)
  r <- pr_cycle_round(name, rep("a", n), spec, function(x, i) {
    # A fresh view each time: a view keeps the strings it made.
    x <- map_shared(name)
    y <- tryCatch(share(structure(x, copy = i)), mori_error = function(e) {
      # The planning and the writing walk read different strings: share()
      # refuses (nothing else is acceptable).
      expect_match(conditionMessage(e), "changed while it was being shared")
      NULL
    })
    if (is.null(y)) {
      seen[["changed"]] <<- seen[["changed"]] + 1
      return(character())
    }
    seen[["ok"]] <<- seen[["ok"]] + 1
    elements <- is.na(y[seq_along(y)])
    seen[["with_na"]] <<- seen[["with_na"]] + any(elements)
    c(if (!identical(anyNA(y), any(elements))) "anyNA",
      if (!all(y[!elements] == "a")) "values")
  })
  expect_gt(r$flips, 0)
  expect_gt(seen[["ok"]], 0)
  expect_gt(seen[["with_na"]], 0) # the writer's NAs were seen
  expect_identical(r$results, character(), label = "character shares whose anyNA() or values differ from their elements")
  message(sprintf("published-races: character reshares %d ok (%d with NAs) / %d refused, %d flips",
                  seen[["ok"]], seen[["with_na"]], seen[["changed"]], r$flips))
})
