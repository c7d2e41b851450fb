# Reliability and security: untrusted regions, malformed names, running out
# of space, truncation, fork safety, crashed owners, leaks, isolation between
# users, concurrency, descriptor limits, references from other hosts.
# Bigger runs and figures: tools/reliability/ (see its README.md).

rel_tag <- sprintf("rel%x", Sys.getpid())
rel_fds <- function() length(list.files("/proc/self/fd"))
rel_maps <- function() sum(grepl("memfd:mori", readLines("/proc/self/maps")))
rel_shm <- function(prefix = rel_tag) Sys.glob(file.path("/dev/shm", paste0("mori.", prefix, "*")))
rel_is_root <- function() identical(unname(Sys.info()[["effective_user"]]), "root")
rel_lib <- function() dirname(system.file(package = "mori"))
rel_rscript <- function() file.path(R.home("bin"), "Rscript")
rel_err <- function(expr) tryCatch({
  force(expr)
  ""
}, error = function(e) conditionMessage(e))

# Runs R `code` in an Rscript child (optionally wrapped by a shell `prefix`
# such as "ulimit -n 200;"); returns list(status, out).
rel_child <- function(code, prefix = "", timeout = 60, env = character()) {
  script <- tempfile(fileext = ".R")
  writeLines(c(sprintf(".libPaths(c(%s, .libPaths()))", deparse(rel_lib())), "library(mori)", code), script)
  on.exit(unlink(script))
  cmd <- sprintf("%s exec %s --vanilla %s 2>&1", prefix, shQuote(rel_rscript()), shQuote(script))
  out <- suppressWarnings(system2("timeout", c(timeout, "sh", "-c", shQuote(cmd)), stdout = TRUE, env = env))
  status <- attr(out, "status")
  list(status = if (is.null(status)) 0L else status, out = out)
}

# Waits until a callr::r_bg process prints a line; returns it.
rel_line <- function(bg, timeout = 20) {
  end <- Sys.time() + timeout
  while (Sys.time() < end) {
    bg$poll_io(200)
    l <- bg$read_output_lines()
    if (length(l)) return(trimws(l[1]))
    if (!bg$is_alive()) break
  }
  stop("child printed nothing: ", paste(bg$read_all_error_lines(), collapse = "\n"))
}

# --- 1. untrusted regions ---------------------------------------------------

test_that("corrupted, truncated and random regions give clean errors or valid objects, never a crash", {
  skip_on_cran()
  skip_if_not_installed("callr")
  lib_file <- test_path("..", "..", "tools", "reliability", "fuzz-lib.R")
  skip_if_not(file.exists(lib_file), "tools/reliability/fuzz-lib.R not available")
  source(lib_file, local = TRUE)
  r <- fz_drive(300, rel_lib(), normalizePath(lib_file), crash_dir = tempdir(), timeout = 120)
  expect_equal(r$cases, 300)
  expect_equal(r$valid + r$errors, 300)
  expect_length(r$crashes, 0)
  expect_gt(r$valid, 10)
  expect_gt(r$errors, 100)
  expect_length(r$internal, 0)
  expect_length(Sys.glob("/dev/shm/mori.fz*"), 0)
})

test_that("a region whose class attribute is not a character vector is refused, not crashed on", {
  skip_on_cran()
  name <- paste0(rel_tag, "_cls")
  on.exit(unlink(file.path("/dev/shm", paste0("mori.", name))), add = TRUE)
  res <- rel_child(c(
    sprintf("x <- share(as.Date('2024-01-01') + 0:9, name = '%s')", name),
    sprintf("p <- '/dev/shm/mori.%s'; b <- readBin(p, 'raw', file.size(p)); unshare('%s')", name, name),
    "b[128 + 64 * 2 + 1] <- as.raw(13)", # the class value node: character -> integer
    "fnv <- function(b) { lo <- 0x84222325; hi <- 0xcbf29ce4; for (v in as.integer(b)) { l8 <- lo %% 256; lo <- lo - l8 + bitwXor(as.integer(l8), v); t <- lo * 435; nlo <- t %% 2^32; hi <- (hi * 435 + (t - nlo) / 2^32 + (lo %% 2^24) * 256) %% 2^32; lo <- nlo }; c(lo, hi) }",
    "nc <- readBin(b[25:28], 'integer', size = 4, endian = 'little'); h <- fnv(c(b[1:120], b[129:(128 + 64 * nc)]))",
    "b[121:128] <- as.raw(c(floor(h[1] / 256^(0:3)) %% 256, floor(h[2] / 256^(0:3)) %% 256))",
    "writeBin(b, p)",
    sprintf("r <- tryCatch({ y <- map_shared('%s'); capture.output(str(y)); 'ok' }, error = function(e) 'error')", name),
    "unlink(p); cat('RESULT', r, '\\n')"
  ))
  expect_equal(res$status, 0L)
  expect_true(any(grepl("RESULT", res$out)))
})

test_that("a region whose dim attribute does not match its length is refused", {
  skip_on_cran()
  name <- paste0(rel_tag, "_dim")
  on.exit(unlink(file.path("/dev/shm", paste0("mori.", name))), add = TRUE)
  res <- rel_child(c(
    sprintf("x <- share(matrix(as.double(1:12), 3, 4), name = '%s')", name),
    sprintf("p <- '/dev/shm/mori.%s'; b <- readBin(p, 'raw', file.size(p))", name),
    "pat <- as.raw(c(3, 0, 0, 0, 4, 0, 0, 0))",
    "s <- which(vapply(seq_len(length(b) - 7), function(i) all(b[i:(i + 7)] == pat), TRUE))",
    "b[s + 4:7] <- writeBin(50000000L, raw(), endian = 'little')",
    "Sys.chmod(p, '600'); writeBin(b, p)",
    sprintf("r <- tryCatch({ y <- map_shared('%s'); sum(y %%*%% rep(1, 5e7)); 'accepted' }, error = function(e) 'error')", name),
    sprintf("unshare('%s'); cat('RESULT', r, '\\n')", name)
  ))
  expect_equal(res$status, 0L)
  expect_true(any(grepl("RESULT error", res$out)))
})

# Attributes are set through R's setter (R's API has no other way), which
# signals an R error on what it refuses; such regions are refused first, with
# mori's own error.
rel_patched_attribute <- function(suffix, make, from, to) {
  name <- paste0(rel_tag, suffix)
  on.exit(unlink(file.path("/dev/shm", paste0("mori.", name))), add = TRUE)
  rel_child(c(
    sprintf("x <- share(%s, name = '%s')", make, name),
    sprintf("p <- '/dev/shm/mori.%s'; b <- readBin(p, 'raw', file.size(p)); unshare('%s')", name, name),
    sprintf("from <- %s; to <- %s", from, to),
    "s <- which(vapply(seq_len(length(b) - length(from) + 1), function(i) all(b[i - 1 + seq_along(from)] == from), TRUE))",
    "stopifnot(length(s) == 1); b[s - 1 + seq_along(to)] <- to; writeBin(b, p)",
    sprintf("r <- tryCatch({ y <- map_shared('%s'); capture.output(print(y)); 'accepted' }, error = function(e) conditionMessage(e))", name),
    "unlink(p); cat('RESULT', r, '\\n')"
  ))
}

test_that("a region whose class says factor on a double vector is refused", {
  skip_on_cran()
  res <- rel_patched_attribute("_fct", "structure(as.double(1:10), class = 'fxctor')",
                               "charToRaw('fxctor')", "charToRaw('factor')")
  expect_equal(res$status, 0L)
  expect_true(any(grepl("RESULT .*corrupt.*class", res$out)), info = paste(res$out, collapse = "\n"))
})

test_that("a region whose tsp does not fit the series' length is refused", {
  skip_on_cran()
  for (case in list(c(2000, 2019, 1), c(2000, 2009, 0), c(2000, 2009, -1))) {
    res <- rel_patched_attribute("_tsp", "ts(as.double(1:10) + 0.5, start = 2000)",
                                 "writeBin(c(2000, 2009, 1), raw(), endian = 'little')",
                                 sprintf("writeBin(c(%s), raw(), endian = 'little')", toString(case)))
    expect_equal(res$status, 0L)
    expect_true(any(grepl("RESULT .*corrupt.*tsp", res$out)), info = paste(res$out, collapse = "\n"))
  }
  # a matrix series: the rows, not the length, must fit
  res <- rel_patched_attribute("_tsm", "ts(matrix(as.double(1:20) + 0.5, 10, 2), start = 2000)",
                               "writeBin(c(2000, 2009, 1), raw(), endian = 'little')",
                               "writeBin(c(2000, 2019, 1), raw(), endian = 'little')")
  expect_true(any(grepl("RESULT .*corrupt.*tsp", res$out)), info = paste(res$out, collapse = "\n"))
})

test_that("a region whose attribute lists form a cycle gives a clean error, not a stack overflow", {
  skip_on_cran()
  name <- paste0(rel_tag, "_cyc")
  on.exit(unlink(file.path("/dev/shm", paste0("mori.", name))), add = TRUE)
  res <- rel_child(c(
    sprintf("x <- share(matrix(as.double(1:12), 3, 4, dimnames = list(letters[1:3], LETTERS[1:4])), name = '%s')", name),
    sprintf("p <- '/dev/shm/mori.%s'; b <- readBin(p, 'raw', file.size(p)); unshare('%s')", name, name),
    "u32 <- function(at) readBin(b[at + 1:4], 'integer', size = 4, endian = 'little')",
    "nc <- u32(24); root_attrs <- u32(128 + 4)",
    # the dimnames list (a list node inside the root's attribute list) gets
    # the root's attribute list as its own attributes: a cycle
    "dn <- Filter(function(k) as.integer(b[128 + 64 * k + 1]) == 19 && u32(128 + 64 * k + 48) == root_attrs, seq_len(nc) - 1)[1]",
    "b[128 + 64 * dn + 5:8] <- writeBin(root_attrs, raw(), size = 4, endian = 'little')",
    "fnv <- function(b) { lo <- 0x84222325; hi <- 0xcbf29ce4; for (v in as.integer(b)) { l8 <- lo %% 256; lo <- lo - l8 + bitwXor(as.integer(l8), v); t <- lo * 435; nlo <- t %% 2^32; hi <- (hi * 435 + (t - nlo) / 2^32 + (lo %% 2^24) * 256) %% 2^32; lo <- nlo }; c(lo, hi) }",
    "h <- fnv(c(b[1:120], b[129:(128 + 64 * nc)]))",
    "b[121:128] <- as.raw(c(floor(h[1] / 256^(0:3)) %% 256, floor(h[2] / 256^(0:3)) %% 256))",
    "writeBin(b, p)",
    sprintf("r <- tryCatch({ y <- map_shared('%s'); 'accepted' }, error = function(e) 'error')", name),
    "unlink(p); cat('RESULT', r, '\\n')"
  ))
  expect_equal(res$status, 0L)
  expect_true(any(grepl("RESULT error", res$out)))
})

# --- 2. malformed names -------------------------------------------------------

rel_bad_names <- function() {
  list(
    "", " ", strrep("a", 1e6), strrep("/mori_1_1_1", 500), "\\0", "a\\0b", "/mori_1_1_1\\0",
    "/../etc/passwd", "../x", "../../etc/shadow", "x/../../etc/passwd", "./x", ".", "..", "/",
    "mori.x", "mori", "moriX", "/dev/shm/mori.x", "dev/shm/x", "/mori", "/mori_", "/mori__",
    "//mori_1_1_1", "/MORI_1_1_1", "/mori_01_1_1", "/mori_0_1_1", "/mori_1_1", "/mori_1_1_1_1",
    "/mori_g_1_1", "/mori_-1_1_1", "/mori_1_1_80000000", "/mori_ffffffffff_1_1",
    "/mori_1_1_1[0]", "/mori_1_1_1[]", "/mori_1_1_1[1,]", "/mori_1_1_1[-1]", "/mori_1_1_1[1.5]",
    "/mori_1_1_1[99999999999999999999999]", "/mori_1_1_1[1", "/mori_1_1_1]", "/mori_1_1_1#",
    "/mori_1_1_1#-1", "/mori_1_1_1#x", "/mori_1_1_1@0:1", "/mori_1_1_1@2:1", "/mori_1_1_1@1",
    "/mori_1_1_1@:", paste0("/mori_1_1_1[", paste(rep(1, 1001), collapse = ","), "]"),
    "/mori_1_1_1/../../etc/passwd", "-x", "_x", ".x", strrep("a", 65), "a b", "a/b", "a\nb",
    "\u00fcnic\u00f6de", "/mori_\u0661_1_1", "x\t", NA_character_, NA, 1, 1L, 2.5, TRUE, NULL,
    list("x"), c("a", "b"), c("/mori_1_1_1", "/mori_1_1_2"), character(0), raw(3), as.raw(0),
    function() 1, quote(x), factor("x"), globalenv(), complex(1)
  )
}

test_that("malformed names of every shape give NULL or a clear error and open nothing", {
  skip_on_cran()
  # Collect what earlier tests left unreachable first, so the baseline holds.
  gc()
  fds <- rel_fds()
  for (n in rel_bad_names()) {
    r <- tryCatch(map_shared(n), error = function(e) e)
    if (inherits(r, "error")) {
      msg <- conditionMessage(r)
      expect_gt(nchar(msg), 10)
      expect_false(grepl("internal error", msg), info = msg)
    } else {
      expect_null(r)
    }
    # share(name =) and unshare() refuse them with a clear error
    # (names over 1000 characters: see the next test)
    if (!is.null(n) && !(is.character(n) && isTRUE(any(nchar(n) > 1000)))) {
      # a string is a bad name; anything else a bad argument, named
      is_string <- is.character(n) && length(n) == 1 && !is.na(n)
      e <- tryCatch(share(1, name = n), error = identity)
      expect_s3_class(e, if (is_string) "mori_error_bad_name" else "mori_error_bad_argument")
      expect_match(conditionMessage(e),
                   if (is_string) "cannot name a shared region" else "^`name` must be a single string or NULL")
    }
    msg <- rel_err(unshare(n))
    expect_true(nzchar(msg))
    expect_false(grepl("internal error", msg), info = msg)
  }
  expect_equal(rel_fds(), fds)
  expect_false(file.exists("/dev/x"))
  # unshare() never removes files outside mori's own
  victim <- tempfile("victim")
  writeLines("keep", victim)
  for (n in c(victim, paste0("../../..", victim), paste0("..", victim), basename(victim))) {
    suppressWarnings(try(unshare(n), silent = TRUE))
  }
  expect_true(file.exists(victim))
  unlink(victim)
  # a well-formed name whose region is gone: "not found"; a bare word that
  # nothing is published under is no mori name: NULL
  expect_match(rel_err(map_shared("/mori_7ffffffe_1_1")), "not found")
  expect_error(map_shared("/mori_7ffffffe_1_1"), class = "mori_error_not_found")
  # pid 1 is alive: its region is not found where its descriptors can be
  # read, out of sight where they cannot (containers deny even root)
  init_fds_visible <- !is.na(suppressWarnings(Sys.readlink("/proc/1/fd/0"))) &&
    nzchar(suppressWarnings(Sys.readlink("/proc/1/fd/0")))
  expect_error(map_shared("/mori_1_1_1"),
               class = if (init_fds_visible) "mori_error_not_found" else "mori_error_out_of_sight")
  expect_null(map_shared(paste0(rel_tag, "_none")))
})

test_that("the error for a huge published name still explains the rule", {
  skip_on_cran()
  expect_match(rel_err(share(1, name = strrep("a", 1e6))), "cannot name a shared region")
})

test_that("map_shared() with malformed names opens no file outside mori's own (strace)", {
  skip_on_cran()
  skip_if(Sys.which("strace") == "", "strace not available")
  names <- Filter(function(n) is.character(n) && length(n) == 1 && !is.na(n) && nchar(n) < 5000, rel_bad_names())
  names_file <- tempfile()
  saveRDS(names, names_file)
  marker <- tempfile("marker")
  writeLines("", marker)
  trace <- tempfile()
  script <- tempfile(fileext = ".R")
  writeLines(c(sprintf(".libPaths(c(%s, .libPaths()))", deparse(rel_lib())), "library(mori)",
               "invisible(try(map_shared('/mori_1_1_1'), silent = TRUE)); invisible(try(unshare('a'), silent = TRUE))",
               sprintf("n <- readRDS('%s'); invisible(readLines('%s'))", names_file, marker),
               "for (x in n) try(map_shared(x), silent = TRUE)",
               "for (x in n) try(unshare(x), silent = TRUE)",
               sprintf("invisible(readLines('%s'))", marker)), script)
  on.exit(unlink(c(names_file, marker, trace, script)))
  system2("strace", c("-f", "-qq", "-e", "trace=open,openat,openat2,unlink,unlinkat,rename,mkdir,creat",
                      "-o", trace, rel_rscript(), "--vanilla", script), stdout = FALSE, stderr = FALSE)
  lines <- readLines(trace)
  at <- grep(basename(marker), lines, fixed = TRUE)
  expect_gte(length(at), 2)
  calls <- lines[seq(at[1] + 1, at[length(at)] - 1)]
  calls <- calls[grepl("(open|unlink|rename|mkdir|creat)", calls)]
  paths <- sub('^[^"]*"([^"]*)".*$', "\\1", calls)
  paths <- paths[paths != marker]
  ok <- grepl("^/dev/shm/mori\\.[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", paths) |
    grepl("^/proc/[0-9]+/fd/[0-9]+$", paths)
  expect_true(all(ok), info = paste(unique(paths[!ok]), collapse = ", "))
})

# --- 3. out of space ------------------------------------------------------------

test_that("a published region larger than a small /dev/shm fails cleanly and leaves nothing", {
  skip_on_cran()
  skip_if_not(rel_is_root(), "needs root")
  skip_if(Sys.which("unshare") == "", "unshare not available")
  script <- tempfile(fileext = ".R")
  writeLines(c(sprintf(".libPaths(c(%s, .libPaths()))", deparse(rel_lib())), "library(mori)",
               "r <- tryCatch({ share(rnorm(1.3e7), name = 'big'); 'shared' }, error = function(e) conditionMessage(e))",
               "cat('MSG', r, '\\n')",
               "cat('LEFT', length(list.files('/dev/shm', all.files = TRUE, no.. = TRUE)), '\\n')",
               "x <- share(1:10, name = 'small'); unshare('small'); cat('ALIVE', sum(x), '\\n')"), script)
  on.exit(unlink(script))
  cmd <- sprintf("mount -t tmpfs -o size=16m tmpfs /dev/shm && exec %s --vanilla %s", rel_rscript(), script)
  out <- suppressWarnings(system2("unshare", c("-m", "sh", "-c", shQuote(cmd)), stdout = TRUE, stderr = TRUE))
  skip_if(!is.null(attr(out, "status")) && !any(grepl("MSG", out)), "cannot mount a private /dev/shm here")
  msg <- grep("^MSG", out, value = TRUE)
  expect_match(msg, "104.0 MB")
  expect_match(msg, "could not reserve")
  expect_match(msg, "No space left")
  expect_true(any(grepl("^LEFT 0", out)))
  expect_true(any(grepl("^ALIVE 55", out)))
})

test_that("a 64 MB /dev/shm (Docker's default) does not stop a 1 GB share()", {
  skip_on_cran()
  skip_if_not(rel_is_root(), "needs root")
  skip_if(Sys.which("unshare") == "", "unshare not available")
  skip_if(mori:::available_mb() < 4000, "needs 4 GB of free memory")
  script <- tempfile(fileext = ".R")
  writeLines(c(sprintf(".libPaths(c(%s, .libPaths()))", deparse(rel_lib())), "library(mori)",
               "x <- rep(1.5, 1.25e8)",
               "s <- share(x)",
               "cat('SIZE', sprintf('%.0f', shared_regions()$bytes), '\\n')",
               "cat('OK', identical(s, x), sum(s) == 1.875e8, '\\n')"), script)
  on.exit(unlink(script))
  cmd <- sprintf("mount -t tmpfs -o size=64m tmpfs /dev/shm && exec %s --vanilla %s", rel_rscript(), script)
  out <- suppressWarnings(system2("unshare", c("-m", "sh", "-c", shQuote(cmd)), stdout = TRUE, stderr = TRUE))
  skip_if(!is.null(attr(out, "status")) && !any(grepl("OK|SIZE", out)), "cannot mount a private /dev/shm here")
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

# --- 4. removed or truncated under a reader --------------------------------------

test_that("an ordinary region cannot be truncated or written, even by root; readers keep reading", {
  skip_without_memfd()
  skip_on_cran()
  x <- share(as.double(1:1e5))
  fd <- strtoi(sub(".*_", "", shared_name(x)), 16L)
  path <- sprintf("/proc/%d/fd/%d", Sys.getpid(), fd)
  expect_match(Sys.readlink(path), "^/memfd:mori_")
  st <- suppressWarnings(system2("truncate", c("-s", "0", path), stdout = TRUE, stderr = TRUE))
  expect_false(is.null(attr(st, "status")))
  st <- suppressWarnings(system2("dd", c("if=/dev/zero", paste0("of=", path), "bs=1", "count=8", "conv=notrunc"),
                                 stdout = TRUE, stderr = TRUE))
  expect_false(is.null(attr(st, "status")))
  expect_equal(file.info(path)$size, file.info(path)$size)
  expect_equal(sum(x), sum(as.double(1:1e5)))
  expect_equal(x[1e5], 1e5)
})

test_that("unshare() while another process reads a published region: the reader keeps reading", {
  skip_on_cran()
  skip_if_not_installed("callr")
  name <- paste0(rel_tag, "_unsh")
  x <- share(as.double(1:1e5), name = name)
  bg <- callr::r_bg(function(name) {
    y <- mori::map_shared(name)
    cat("mapped\n")
    while (!file.exists(paste0("/tmp/", name, ".go"))) Sys.sleep(0.05)
    c(sum(y), y[1e5], length(y))
  }, args = list(name = name), libpath = .libPaths(), stdout = "|")
  on.exit(bg$kill(), add = TRUE)
  rel_line(bg)
  expect_true(unshare(name))
  expect_false(file.exists(file.path("/dev/shm", paste0("mori.", name))))
  rm(x)
  gc()
  file.create(paste0("/tmp/", name, ".go"))
  on.exit(unlink(paste0("/tmp/", name, ".go")), add = TRUE)
  bg$wait(10000)
  expect_equal(bg$get_result(), c(sum(as.double(1:1e5)), 1e5, 1e5))
  # nothing is published under the name any more: a bare word, so NULL
  expect_null(map_shared(name))
})

test_that("truncating a published region's file does not kill its readers", {
  skip_without_sigbus()
  skip_on_cran()
  skip_if_not_installed("callr")
  name <- paste0(rel_tag, "_trunc")
  x <- share(as.double(1:1e6), name = name)
  on.exit(unshare(name), add = TRUE)
  bg <- callr::r_bg(function(name) {
    y <- mori::map_shared(name)
    cat("mapped\n")
    while (!file.exists(paste0("/tmp/", name, ".go"))) Sys.sleep(0.05)
    c(tryCatch(sum(y), error = function(e) conditionMessage(e)),
      tryCatch(y[5e5], error = function(e) conditionMessage(e)))
  }, args = list(name = name), libpath = .libPaths(), stdout = "|")
  rel_line(bg)
  system2("truncate", c("-s", "0", file.path("/dev/shm", paste0("mori.", name))))
  file.create(paste0("/tmp/", name, ".go"))
  on.exit(unlink(paste0("/tmp/", name, ".go")), add = TRUE)
  bg$wait(10000)
  expect_equal(bg$get_exit_status(), 0)
  expect_match(bg$get_result(), "truncated", all = TRUE)
})

test_that("a published region truncated after a reader used it: clean errors, no silent zeros", {
  skip_without_sigbus()
  skip_on_cran()
  skip_if_not_installed("callr")
  # The reader has used both vectors before the truncation: the doubles'
  # data pointer was handed out (later hand-outs skip the file check for a
  # millisecond), one string was made (the others are made on first touch,
  # each read guarded without a file check).
  dname <- paste0(rel_tag, "_trd")
  sname <- paste0(rel_tag, "_trs")
  d <- share(as.double(1:1e6), name = dname)
  s <- share(rep(c("a", "b", "c"), length.out = 3e5), name = sname)
  on.exit({
    unshare(dname)
    unshare(sname)
  }, add = TRUE)
  bg <- callr::r_bg(function(dname, sname) {
    y <- mori::map_shared(dname)
    z <- mori::map_shared(sname)
    before <- c(sum(y * 1), z[1])
    cat("mapped\n")
    while (!file.exists(paste0("/tmp/", dname, ".go"))) Sys.sleep(0.05)
    after <- function(expr) tryCatch({
      v <- force(expr)
      paste("no error:", paste(utils::head(v, 3), collapse = " "))
    }, error = function(e) conditionMessage(e))
    c(before, after(sum(y * 1)), after(c(y, 1)), after(z == "a"), after(y[c(1, 5e5)]), after(y[1:2e5]))
  }, args = list(dname = dname, sname = sname), libpath = .libPaths(), stdout = "|")
  on.exit(bg$kill(), add = TRUE)
  expect_equal(rel_line(bg), "mapped")
  for (n in c(dname, sname)) system2("truncate", c("-s", "0", file.path("/dev/shm", paste0("mori.", n))))
  file.create(paste0("/tmp/", dname, ".go"))
  on.exit(unlink(paste0("/tmp/", dname, ".go")), add = TRUE)
  bg$wait(20000)
  expect_equal(bg$get_exit_status(), 0)
  out <- bg$get_result()
  expect_equal(out[1:2], c(format(sum(as.double(1:1e6)), digits = 15), "a"))
  expect_match(out[3:7], "truncated", all = TRUE)
})

# --- 5. fork safety ------------------------------------------------------------------

test_that("mclapply children that touch, copy, modify and collect shared objects never free the parent's regions", {
  skip_on_cran()
  skip_on_os("windows")
  set.seed(5)
  v <- rnorm(1e5)
  l <- list(a = 1:1e4, s = c("x", NA, "z"), d = data.frame(p = 1:3, q = c("a", "b", "c")))
  sv <- share(v)
  sl <- share(l)
  names0 <- c(shared_name(sv), shared_name(sl$a), shared_name(sl$s))
  out <- parallel::mclapply(1:8, function(i) {
    a <- sv
    a[1] <- i
    b <- sl
    b$a[2] <- -1L
    b$s[1] <- "changed"
    cp <- sv[]
    w <- sl$d
    w$p <- w$p * 2L
    rm(a, b, cp, w)
    gc()
    gc()
    c(sum(sv), sum(sl$a), i)
  }, mc.cores = 2)
  expect_false(any(vapply(out, inherits, TRUE, "try-error")))
  expect_equal(vapply(out, `[`, 1, 1), rep(sum(v), 8))
  gc()
  expect_identical(sv[], v)
  expect_identical(sl$a[], l$a)
  expect_identical(sl$s[], l$s)
  expect_identical(sl$d, l$d)
  expect_true(all(vapply(names0, function(n) !is.null(map_shared(n)), TRUE)))
})

test_that("100 mclapply tasks that each share() leave nothing behind", {
  skip_on_cran()
  skip_on_os("windows")
  gc()
  fds <- rel_fds()
  maps <- rel_maps()
  res <- parallel::mclapply(1:100, function(i) {
    s <- share(rnorm(1000) + i)
    p <- share(list(i = i, v = 1:100), name = sprintf("%s_mc%d", rel_tag, i))
    unshare(sprintf("%s_mc%d", rel_tag, i))
    list(sum = sum(s), x = s, name = shared_name(s))
  }, mc.cores = 2)
  expect_false(any(vapply(res, inherits, TRUE, "try-error")))
  expect_equal(length(unique(vapply(res, `[[`, "", "name"))), 100)
  # workers' own regions come back as values
  expect_false(any(vapply(res, function(r) is_shared(r$x), TRUE)))
  expect_equal(vapply(res, function(r) sum(r$x), 1), vapply(res, `[[`, 1, "sum"))
  gc()
  expect_equal(rel_fds(), fds)
  expect_equal(rel_maps(), maps)
  expect_length(rel_shm(), 0)
})

# --- 6. crash of the owner -------------------------------------------------------------

test_that("after an owner is killed with SIGKILL its regions are not found and nothing is left", {
  skip_on_cran()
  skip_if_not_installed("callr")
  bg <- callr::r_bg(function() {
    x <- mori::share(rnorm(1e5))
    cat(mori::shared_name(x), "\n")
    Sys.sleep(60)
  }, libpath = .libPaths(), stdout = "|")
  name <- rel_line(bg)
  expect_match(name, "^/mori_")
  expect_false(is.null(map_shared(name)))
  gc()
  bg$signal(9)
  bg$wait(5000)
  gc()
  expect_match(rel_err(map_shared(name)), "not found")
  file <- memfd_file(name)
  expect_false(any(grepl(file, list.files("/dev/shm"), fixed = TRUE)))
  # no process maps or holds it any more
  holders <- vapply(list.files("/proc", pattern = "^[0-9]+$"), function(p) {
    maps <- tryCatch(suppressWarnings(readLines(file.path("/proc", p, "maps"))), error = function(e) character())
    links <- suppressWarnings(Sys.readlink(list.files(file.path("/proc", p, "fd"), full.names = TRUE)))
    any(grepl(paste0("memfd:", file, "( |$)"), c(maps, links)))
  }, TRUE)
  expect_false(any(holders))
})

test_that("prune_shared() removes the region of a SIGKILLed publisher and never one of a live process", {
  skip_on_cran()
  skip_if_not_installed("callr")
  live <- paste0(rel_tag, "_live")
  dead <- paste0(rel_tag, "_dead")
  x <- share(1:10, name = live)
  on.exit(unshare(live), add = TRUE)
  bg <- callr::r_bg(function(dead) {
    x <- mori::share(letters, name = dead)
    cat("published\n")
    Sys.sleep(60)
  }, args = list(dead = dead), libpath = .libPaths(), stdout = "|")
  rel_line(bg)
  expect_identical(map_shared(dead)[], letters)
  bg$signal(9)
  bg$wait(5000)
  expect_true(file.exists(file.path("/dev/shm", paste0("mori.", dead))))
  vis <- withVisible(prune_shared())
  expect_false(vis$visible)
  expect_true(dead %in% vis$value)
  expect_false(live %in% vis$value)
  expect_false(file.exists(file.path("/dev/shm", paste0("mori.", dead))))
  expect_identical(map_shared(live)[], 1:10)
  gc() # drops this process's view of the dead region
  # nothing is published under the name any more: NULL, as for any bare word
  expect_null(map_shared(dead))
})

test_that("a name published again maps to the new region, not to a cached old one", {
  skip_on_cran()
  skip_if_not_installed("callr")
  name <- paste0(rel_tag, "_again")
  old <- share(c(1, 2), name = name)
  on.exit(unshare(name), add = TRUE)
  callr::r(function(name) {
    mori::unshare(name)
    x <- mori::share(c(7, 8, 9), name = name)
    NULL
  }, list(name), libpath = .libPaths())
  expect_identical(map_shared(name)[], c(7, 8, 9))
})

# --- 7. no leaks -----------------------------------------------------------------------

test_that("500 share/rm/gc cycles return descriptors and mappings to baseline", {
  skip_without_memfd()
  skip_on_cran()
  gc()
  fds <- rel_fds()
  maps <- rel_maps()
  regions <- nrow(shared_regions())
  big <- rnorm(2e5)
  objs <- list(rnorm(100), 1:1e4, c("a", NA, "\u00e9"), list(a = 1, b = list("x", 2L)),
               head(mtcars), iris, factor(c("u", "v")))
  for (i in 1:500) {
    s <- share(objs[[i %% length(objs) + 1]])
    b <- share(big)
    sl <- b[1:1e5]
    y <- map_shared(shared_name(b))
    z <- sum(sl) + sum(y)
    rm(s, b, sl, y)
    if (i %% 50 == 0) gc()
  }
  gc()
  gc()
  expect_equal(rel_fds(), fds)
  expect_equal(rel_maps(), maps)
  expect_equal(nrow(shared_regions()), regions)
})

# --- 9. isolation -------------------------------------------------------------------------

test_that("regions are created mode 0600 (ordinary) and 0400 (published)", {
  skip_on_cran()
  # A small region (packed) and a large one (a memory file of its own).
  for (x in list(share(1:10), share(as.double(1:1e5)))) {
    fd <- strtoi(sub(".*_", "", sub("[+].*$", "", shared_name(x))), 16L)
    expect_equal(format(file.info(sprintf("/proc/self/fd/%d", fd))$mode), "600")
  }
  name <- paste0(rel_tag, "_mode")
  p <- share(1:10, name = name)
  on.exit(unshare(name))
  expect_equal(format(file.info(file.path("/dev/shm", paste0("mori.", name)))$mode), "400")
})

# A copy of the installed package that user 65534 can read.
rel_public_lib <- function() {
  dir <- tempfile("mori-public-lib-", tmpdir = "/tmp")
  dir.create(dir)
  file.copy(system.file(package = "mori"), dir, recursive = TRUE)
  system2("chmod", c("-R", "a+rX", dir))
  dir
}

rel_as_nobody <- function(lib, code, timeout = 30) {
  script <- tempfile("nobody-", tmpdir = "/tmp", fileext = ".R")
  writeLines(c(sprintf("library(mori, lib.loc = '%s')", lib), code), script)
  Sys.chmod(script, "644")
  on.exit(unlink(script))
  out <- suppressWarnings(system2("timeout", c(timeout, "setpriv", "--reuid=65534", "--regid=65534",
                                              "--clear-groups", rel_rscript(), "--vanilla", script),
                                  stdout = TRUE, stderr = TRUE, env = "HOME=/tmp"))
  out
}

test_that("another user cannot open, write or truncate our regions", {
  skip_without_other_users()
  skip_on_cran()
  skip_if_not(rel_is_root(), "needs root")
  skip_if(Sys.which("setpriv") == "", "setpriv not available")
  lib <- rel_public_lib()
  on.exit(unlink(lib, recursive = TRUE), add = TRUE)
  x <- share(as.double(1:1000)) # packed with other small regions
  name <- paste0(rel_tag, "_iso")
  p <- share(as.double(1:1000), name = name)
  on.exit(unshare(name), add = TRUE)
  fd <- strtoi(sub(".*_", "", sub("[+].*$", "", shared_name(x))), 16L)
  proc <- sprintf("/proc/%d/fd/%d", Sys.getpid(), fd)
  shm <- file.path("/dev/shm", paste0("mori.", name))
  out <- rel_as_nobody(lib, c(
    sprintf("for (n in c('%s', '%s')) cat('MSG', tryCatch({ y <- map_shared(n); paste('READ', sum(y)) }, error = function(e) paste(class(e)[1], conditionMessage(e))), '\\n')",
            shared_name(x), name),
    sprintf("cat('W1', tryCatch({ con <- file('%s', 'r+b'); 'opened' }, error = function(e) 'refused', warning = function(w) 'refused'), '\\n')", shm),
    sprintf("cat('W2', system('dd if=/dev/zero of=%s bs=1 count=8 conv=notrunc 2>/dev/null'), '\\n')", shm),
    sprintf("cat('W3', system('truncate -s 0 %s 2>/dev/null'), '\\n')", shm),
    sprintf("cat('W4', system('dd if=/dev/zero of=%s bs=1 count=8 conv=notrunc 2>/dev/null'), '\\n')", proc)
  ))
  msgs <- grep("^MSG", out, value = TRUE)
  expect_length(msgs, 2)
  expect_false(any(grepl("READ", msgs)))
  # another user's regions are out of sight, not "freed or exited"
  expect_true(all(grepl("^MSG mori_error_out_of_sight .*another user", msgs)), info = paste(out, collapse = "\n"))
  expect_true(any(grepl("^W1 refused", out)))
  expect_false(any(grepl("^W[234] 0 ", out)))
  expect_equal(sum(x), sum(1:1000))
  expect_equal(sum(map_shared(name)), sum(1:1000))
})

test_that("a region file planted by another user is not trusted", {
  skip_on_cran()
  skip_if_not(rel_is_root(), "needs root")
  name <- paste0(rel_tag, "_plant")
  x <- share(c(1, 2, 3), name = name)
  shm <- file.path("/dev/shm", paste0("mori.", name))
  b <- readBin(shm, "raw", file.size(shm))
  unshare(name)
  rm(x)
  gc()
  src <- tempfile(tmpdir = "/tmp")
  writeBin(b, src)
  Sys.chmod(src, "644")
  on.exit(unlink(c(src, shm)), add = TRUE)
  system2("setpriv", c("--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c",
                       shQuote(sprintf("cp %s %s && chmod 666 %s", src, shm, shm))))
  expect_equal(file.info(shm)$uname, "nobody")
  expect_error(map_shared(name), "belongs to another user", class = "mori_error_out_of_sight")
})

test_that("a FIFO planted under a region's name does not hang map_shared() or prune_shared()", {
  skip_on_cran()
  name <- paste0(rel_tag, "_fifo")
  shm <- file.path("/dev/shm", paste0("mori.", name))
  system2("mkfifo", shm)
  on.exit(unlink(shm), add = TRUE)
  res <- rel_child(c(sprintf("cat('MSG', tryCatch({ map_shared('%s'); 'mapped' }, error = function(e) 'error'), '\\n')", name),
                     "invisible(prune_shared()); cat('PRUNED\\n')"), timeout = 10)
  expect_true(any(grepl("^MSG error", res$out)))
  expect_true(any(grepl("^PRUNED", res$out)))
})

test_that("a consumer that writes changes only its own copy", {
  skip_on_cran()
  skip_if_not_installed("callr")
  x <- share(as.double(1:1e5))
  l <- share(data.frame(a = as.double(1:1e4), b = 1:1e4))
  res <- callr::r(function(n1, n2) {
    y <- mori::map_shared(n1)
    y[1] <- 99 # through REAL(): private pages
    d <- mori::map_shared(n2)
    dt <- FALSE
    if (requireNamespace("data.table", quietly = TRUE)) {
      # data.table::set() writes in place through the column's data pointer
      data.table::set(d, i = 1L, j = "a", value = -5)
      dt <- TRUE
    }
    list(y1 = y[1], d1 = d$a[1], dt = dt, again = mori::map_shared(n1)[1], again_d = mori::map_shared(n2)$a[1])
  }, args = list(shared_name(x), shared_name(l)), libpath = .libPaths())
  expect_equal(res$y1, 99)
  if (res$dt) expect_equal(res$d1, -5)
  expect_equal(res$again, 1)
  expect_equal(res$again_d, 1)
  expect_equal(x[1], 1)
  expect_equal(l$a[1], 1)
  expect_equal(callr::r(function(n) mori::map_shared(n)[1], list(shared_name(x)), libpath = .libPaths()), 1)
})

# --- 10. concurrency ------------------------------------------------------------------------

test_that("8 processes sharing 1,000 objects each at once: no collision, no error", {
  skip_on_cran()
  skip_if_not_installed("callr")
  go <- tempfile("go")
  race <- paste0(rel_tag, "_race")
  procs <- lapply(1:8, function(k) callr::r_bg(function(go, race) {
    while (!file.exists(go)) Sys.sleep(0.01)
    keep <- vector("list", 1000)
    names <- character(1000)
    for (i in 1:1000) {
      keep[[i]] <- mori::share(c(i, runif(3)))
      names[i] <- mori::shared_name(keep[[i]])
    }
    # every process tries to publish the same 20 names: one winner each
    won <- character()
    errs <- character()
    for (j in 1:20) {
      n <- sprintf("%s%d", race, j)
      r <- tryCatch({
        assign(paste0("p", j), mori::share(j, name = n))
        won <- c(won, n)
      }, error = function(e) errs <<- c(errs, paste(class(e)[1], conditionMessage(e))))
    }
    list(names = names, pid = Sys.getpid(), won = won, errs = errs)
  }, args = list(go = go, race = race), libpath = .libPaths()))
  Sys.sleep(1)
  file.create(go)
  on.exit(unlink(go), add = TRUE)
  on.exit(for (j in 1:20) try(unshare(sprintf("%s%d", race, j)), silent = TRUE), add = TRUE)
  for (p in procs) p$wait(60000)
  res <- lapply(procs, function(p) p$get_result())
  all_names <- unlist(lapply(res, `[[`, "names"))
  expect_length(all_names, 8000)
  expect_equal(anyDuplicated(all_names), 0)
  won <- unlist(lapply(res, `[[`, "won"))
  expect_setequal(won, sprintf("%s%d", race, 1:20))
  expect_equal(anyDuplicated(won), 0)
  errs <- unlist(lapply(res, `[[`, "errs"))
  expect_length(errs, 8 * 20 - 20)
  expect_true(all(grepl("^mori_error_name_taken a region is published under the name '.*' already\n", errs)))
})

# --- 11. many objects --------------------------------------------------------------------------

test_that("running out of descriptors ends in a clear R error, not an abort", {
  skip_on_cran()
  res <- rel_child(c(
    "keep <- list(); r <- 'none'",
    # 40 KB each: a region and a descriptor apiece (smaller ones are packed)
    "r <- tryCatch({ for (i in 1:1000) keep[[i]] <- share(rep(c(i, 1), 2500)); 'no limit hit' }, error = function(e) conditionMessage(e))",
    "cat('N', length(keep), '\\n'); cat('MSG', r, '\\n')",
    "rm(keep); gc(); x <- share(1:10); cat('ALIVE', sum(x), '\\n')"
  ), prefix = "ulimit -n 200;")
  expect_equal(res$status, 0L)
  n <- as.numeric(sub("^N ", "", grep("^N ", res$out, value = TRUE)))
  expect_gt(n, 100)
  expect_lt(n, 200)
  expect_true(any(grepl("^MSG this process has too many shared regions open \\(one descriptor each; .*limit of 200 descriptors", res$out)))
  expect_true(any(grepl("^ALIVE 55", res$out)))
})

# --- 12. another host -----------------------------------------------------------------------------

# The host id as references carry it: the first 8 bytes of the boot id, in
# binary, found in `s`, and where.
rel_host_in <- function(s) {
  boot <- gsub("-", "", readLines("/proc/sys/kernel/random/boot_id"))
  host <- as.raw(strtoi(substring(boot, seq(1, 15, 2), seq(2, 16, 2)), 16L))
  k <- length(host)
  at <- which(vapply(seq_len(length(s) - k + 1), function(i) all(s[i:(i + k - 1)] == host), TRUE))
  if (length(at) == 1) list(at = at, len = k) else NULL
}

test_that("a reference whose host id is changed errors with 'another machine'", {
  skip_on_cran()
  x <- share(rnorm(100))
  s <- serialize(x, NULL)
  h <- rel_host_in(s)
  expect_false(is.null(h))
  for (fill in c("0", "f", "a")) {
    other <- s
    other[h$at:(h$at + h$len - 1)] <- charToRaw(strrep(fill, h$len))
    if (identical(other, s)) next
    expect_match(rel_err(unserialize(other)), "another machine")
  }
  expect_identical(unserialize(s), x)
  # also for a published region
  name <- paste0(rel_tag, "_host")
  p <- share(1:5, name = name)
  on.exit(unshare(name))
  s <- serialize(map_shared(name), NULL)
  h <- rel_host_in(s)
  s[h$at:(h$at + h$len - 1)] <- charToRaw(strrep(if (s[h$at] == charToRaw("f")) "e" else "f", h$len))
  expect_match(rel_err(unserialize(s)), "another machine")
})
