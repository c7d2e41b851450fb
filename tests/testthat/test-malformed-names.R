# Malformed names: NULL or a clear error, and no file opened outside mori's own.
# Bigger runs and figures: tools/reliability/ (see its README.md).
# Shared helpers (rel_child(), rel_tag, ...): helper-reliability.R.

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
  # (a POSIX shm region is opened by name: none, so not found)
  expect_error(map_shared("/mori_1_1_1"),
               class = if (init_fds_visible || region_backend() != "memfd") "mori_error_not_found"
                       else "mori_error_out_of_sight")
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
