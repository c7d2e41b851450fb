# Isolation between users: modes, other users' access and planted files;
# a consumer's writes stay its own.
# Bigger runs and figures: tools/reliability/ (see its README.md).
# Shared helpers (rel_child(), rel_tag, ...): helper-reliability.R.

test_that("regions are created mode 0600 (ordinary) and 0400 (published)", {
  skip_on_cran()
  skip_without_proc()
  # Sealed memfd files keep their 0600 (the seals forbid writes); a sealed
  # POSIX shm object is made 0400, as a published region is.
  sealed <- if (region_backend() == "memfd") "600" else "400"
  # A small region (packed) and a large one (a memory file of its own).
  for (x in list(share(1:10), share(as.double(1:1e5)))) {
    fd <- strtoi(sub(".*_", "", sub("[+].*$", "", shared_name(x))), 16L)
    expect_equal(format(file.info(sprintf("/proc/self/fd/%d", fd))$mode), sealed)
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
