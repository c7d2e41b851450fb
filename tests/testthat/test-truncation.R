# Regions removed or truncated under a reader.
# Bigger runs and figures: tools/reliability/ (see its README.md).
# Shared helpers (rel_child(), rel_tag, ...): helper-reliability.R.

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
