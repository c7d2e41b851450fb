# Errors are classed conditions (mori_error_<kind>, mori_error, error,
# condition) in one message shape (problem, newline, hint), and
# map_shared()'s contract: NULL for anything that is not a mori name.

err_tag <- sprintf("err%x", Sys.getpid())

# The condition `expr` signals (NULL if none).
error_of <- function(expr) tryCatch({
  force(expr)
  NULL
}, error = identity)

# For snapshots: the class and message of the error `expr` signals.
show_error <- function(expr) {
  e <- error_of(expr)
  if (is.null(e)) {
    cat("no error\n")
  } else {
    cat("<", class(e)[1], ">\n", conditionMessage(e), "\n", sep = "")
  }
}

# Snapshots must not depend on this process: its id and region names vary.
scrub <- function(lines) {
  lines <- gsub(err_tag, "<tag>", lines, fixed = TRUE)
  gsub("/mori_[0-9a-f]+_[0-9a-f]+_[0-9a-f]+([+][0-9a-f]+)?", "/mori_<pid>_<serial>_<fd>", lines)
}

expect_mori_error <- function(expr, kind, pattern = NULL) {
  e <- error_of(expr)
  expect_s3_class(e, c(paste0("mori_error_", kind), "mori_error", "error", "condition"), exact = TRUE)
  msg <- conditionMessage(e)
  # one shape: a problem line, then a hint line
  expect_length(strsplit(msg, "\n", fixed = TRUE)[[1]], 2)
  if (!is.null(pattern)) expect_match(msg, pattern)
  expect_no_match(msg, "corrupted", fixed = TRUE)
  invisible(e)
}

test_that("argument errors name the argument and are bad_argument", {
  expect_error(share(1, name = 1), class = "mori_error_bad_argument")
  for (bad in list(1, NA_character_, c("a", "b"), character(), TRUE, list("a"))) {
    e <- expect_mori_error(share(1, name = bad), "bad_argument", "^`name` must be a single string or NULL\n")
    expect_identical(conditionCall(e), quote(share(1, name = bad)))
    expect_mori_error(unshare(bad), "bad_argument", "^`name` must be a single string\n")
  }
  expect_snapshot(show_error(share(1, name = 1)), cran = TRUE)
  expect_snapshot(show_error(unshare(3)), cran = TRUE)
})

test_that("R-level argument checks have the same classes and shape", {
  for (bad in list("1", NA, 1.5, 0, -3, list(1), NULL)) {
    e <- expect_mori_error(memory_usage(bad), "bad_argument", "^`pids` must be process ids")
    expect_identical(conditionCall(e), quote(memory_usage(bad)))
  }
  expect_snapshot(show_error(memory_usage("x")), cran = TRUE)
})

test_that("a string that cannot name a region is bad_name", {
  for (bad in c("a b", "mori_x", ".x", "-x", "", strrep("a", 65), "x/y", "\u00e9t\u00e9")) {
    expect_mori_error(share(1, name = bad), "bad_name", "cannot name a shared region")
    expect_mori_error(unshare(bad), "bad_name", "cannot name a shared region")
  }
  expect_snapshot(show_error(share(1, name = "a b")), cran = TRUE)
})

test_that("a published name taken already is name_taken", {
  name <- paste0(err_tag, "_taken")
  x <- share(1:10, name = name)
  on.exit(unshare(name))
  expect_mori_error(share(1:5, name = name), "name_taken", "published under the name")
  expect_snapshot(show_error(share(1:5, name = name)), cran = TRUE, transform = scrub)
})

test_that("a well-formed name whose region is gone is not_found", {
  expect_mori_error(map_shared("/mori_7ffffffe_1_3"), "not_found", "freed it or exited")
  expect_mori_error(map_shared("/mori_7ffffffe_1_3[2,3]"), "not_found", "freed it or exited")
  x <- share(rnorm(10))
  gone <- shared_name(x)
  rm(x)
  full_gc()
  expect_error(map_shared(gone), class = "mori_error_not_found")
  expect_snapshot(show_error(map_shared("/mori_7ffffffe_1_3")), cran = TRUE)
})

test_that("a reference to a published name nothing is published under says so", {
  name <- paste0(err_tag, "_unpub")
  s <- local({
    x <- share(as.double(1:10), name = name)
    s <- serialize(x, NULL)
    unshare(name)
    s
  })
  full_gc()
  expect_mori_error(unserialize(s), "not_found", sprintf("^no region is published under the name '%s'\n", name))
  expect_snapshot(show_error(unserialize(s)), cran = TRUE, transform = scrub)
  # in another process too
  msg <- in_child(function(s) tryCatch(unserialize(s), error = function(e) class(e)[1]), list(s = s))
  expect_identical(msg, "mori_error_not_found")
})

test_that("map_shared() is NULL for anything that is not a mori name, bare words included", {
  not_names <- list(NULL, 1, 1L, TRUE, NA, NA_character_, character(), c("a", "b"), list("a"),
                    "junk", "not_a_mori_name", "", " ", "a b", "mori", "mori_1_1_1", "/mori_", "/mori_1_1")
  for (x in not_names) expect_null(map_shared(x), label = deparse(x))
  # bare words nothing is published under, with and without element paths
  set.seed(1)
  words <- c(paste0(err_tag, "_never_", 1:50),
             replicate(100, paste(sample(c(letters, LETTERS, 0:9), sample(1:64, 1), TRUE), collapse = "")))
  words <- words[!startsWith(words, "mori")]
  for (w in words) {
    expect_null(map_shared(w), label = w)
    expect_null(map_shared(paste0(w, "[1]")), label = w)
    expect_null(map_shared(paste0(w, "#1@1:2")), label = w)
  }
  # malformed names of many shapes, generated from a real one
  x <- share(list(1:3, list("a", 2)))
  nm <- shared_name(x)
  parts <- strsplit(sub("^/mori_", "", nm), "_")[[1]]
  malformed <- c(
    paste0(nm, c("[", "[]", "[0]", "[1,]", "[,1]", "[a]", "]", "#", "#-1", "#x", "[1]x", "[1]]", "[[1]]",
                 "@", "@1", "@0:3", "@3:2", "@1:2@3:4", "@a:b", "[01]", "[1, 2]", "[-1]", "#01",
                 "#4294967296", "/../x", " ", "\t", "\n")),
    sprintf("/mori_%s_%s_%s", toupper(parts[1]), parts[2], parts[3]),
    sprintf("/mori_0%s_%s_%s", parts[1], parts[2], parts[3]),
    sprintf("/mori_%s_%s", parts[1], parts[2]),
    sprintf("/mori_%s_%s_%s_1", parts[1], parts[2], parts[3]),
    sprintf("/mori_0_%s_%s", parts[2], parts[3]),
    sprintf("mori_%s_%s_%s", parts[1], parts[2], parts[3]),
    sprintf("//mori_%s_%s_%s", parts[1], parts[2], parts[3]),
    paste0(" ", nm), toupper(nm), paste0(nm, nm), strrep(nm, 300),
    paste0(nm, "[", paste(rep("1", 1001), collapse = ","), "]"),
    # every proper prefix that cuts a field short
    vapply(seq_len(nchar(nm) - 1), function(k) substr(nm, 1, k), "")
  )
  # prefixes such as "/mori_1a_2_3" with a shorter descriptor field, or
  # "/mori_1a_2_3+4" with a shorter pack offset, are well-formed names (of
  # other regions): keep only those that are not
  hex <- "([1-9a-f][0-9a-f]*|0)"
  well_formed <- sprintf("^/mori_[1-9a-f][0-9a-f]*_%s_%s([+]%s)?$", hex, hex, hex)
  malformed <- malformed[!grepl(well_formed, malformed)]
  expect_gt(length(malformed), 40)
  for (m in malformed) expect_null(map_shared(m), label = m)
})

test_that("a published name maps its region; missing, it is NULL (bare word)", {
  name <- paste0(err_tag, "_pub")
  expect_null(map_shared(name))
  x <- share(list(a = 1:3, b = "z"), name = name)
  expect_identical(map_shared(name), list(a = 1:3, b = "z"))
  expect_identical(map_shared(paste0(name, "[1]")), 1:3)
  expect_mori_error(map_shared(paste0(name, "[3]")), "bad_path", "out of bounds")
  unshare(name)
  expect_null(map_shared(name))
  expect_null(map_shared(paste0(name, "[1]")))
})

test_that("paths past the end say out of bounds at every depth, and into non-lists say not a nested list", {
  leaf <- list(1:3, "a", NULL, c(x = 1.5), TRUE, as.raw(1), 1i, sum, factor("f"), data.frame(v = 1))
  # a tree 4 deep: each level a list of 3, the last element one level down
  tree <- leaf
  for (d in 1:3) tree <- list(d, "level", tree)
  x <- share(tree)
  nm <- shared_name(x)
  path_name <- function(p) sprintf("%s[%s]", nm, paste(p, collapse = ","))
  down <- integer()
  for (depth in 1:4) {
    len <- if (depth < 4) 3 else length(leaf)
    for (past in c(len + 1, len + 7, 2^31, 1e18)) {
      p <- c(down, format(past, scientific = FALSE))
      e <- expect_mori_error(map_shared(path_name(p)), "bad_path", "out of bounds")
      expect_match(conditionMessage(e), sprintf("length %d\\)", len))
    }
    # a valid path one level short still works
    if (depth < 4) {
      expect_identical(map_shared(path_name(c(down, 1))), as.integer(4 - depth))
      # descending below a non-list element of this level
      for (q in 1:2) {
        expect_mori_error(map_shared(path_name(c(down, q, 1))), "bad_path", "is not a nested list")
      }
      down <- c(down, 3)
    }
  }
  # below each kind of leaf that is not a list
  for (i in seq_along(leaf)) {
    p <- path_name(c(down, i, 1))
    if (is.list(leaf[[i]])) {
      expect_identical(map_shared(p), leaf[[i]][[1]])
    } else {
      expect_mori_error(map_shared(p), "bad_path", "is not a nested list")
    }
  }
  # the root itself not a list
  v <- share(as.double(1:10))
  expect_mori_error(map_shared(paste0(shared_name(v), "[1]")), "bad_path", "the shared object, which is not a nested list")
  # node indices and slices past the end
  expect_mori_error(map_shared(paste0(nm, "#99999")), "bad_path", "out of bounds")
  expect_mori_error(map_shared(paste0(shared_name(v), "@5:11")), "bad_path", "outside the shared vector")
  expect_snapshot({
    show_error(map_shared(paste0(nm, "[4]")))
    show_error(map_shared(paste0(nm, "[3,3,3,11]")))
    show_error(map_shared(paste0(nm, "[3,1,1]")))
    show_error(map_shared(paste0(nm, "[3,3,3,1,1]")))
    show_error(map_shared(paste0(nm, "[3,3,3,8,1]")))
    show_error(map_shared(paste0(nm, "#99999")))
    show_error(map_shared(paste0(shared_name(v), "@5:11")))
  }, cran = TRUE, transform = scrub)
})

test_that("a reference from another machine is other_host", {
  x <- share(rnorm(10))
  s <- serialize(x, NULL)
  # References carry the first 4 bytes of the boot id, in binary.
  tag <- reference_host()
  at <- reference_host_at(s, tag)
  expect_length(at, 1)
  s[at:(at + 3)] <- if (tag[1] == as.raw(0)) as.raw(rep(1, 4)) else as.raw(rep(0, 4))
  expect_mori_error(unserialize(s), "other_host", "another machine")
  expect_snapshot(show_error(unserialize(s)), cran = TRUE, transform = scrub)
})

test_that("a malformed reference in serialized data is corrupt", {
  x <- share(rnorm(10))
  s <- serialize(x, NULL)
  # the reference's first byte, before the host id, says its format
  # (version 2 in the high 3 bits) and that the region is packed (bit 4);
  # version 1, from before packs, is refused
  at <- reference_host_at(s)
  expect_length(at, 1)
  expect_identical(s[at - 1], as.raw(0x50))
  s[at - 1] <- as.raw(0x30)
  e <- error_of(unserialize(s))
  expect_s3_class(e, c("mori_error_corrupt", "mori_error", "error", "condition"), exact = TRUE)
  expect_snapshot(show_error(unserialize(s)), cran = TRUE)
})

test_that("a published region cut short is truncated", {
  name <- paste0(err_tag, "_cut")
  local(share(as.double(1:1e4), name = name))
  on.exit(unshare(name))
  full_gc()
  file <- file.path("/dev/shm", paste0("mori.", name))
  skip_if_not(file.exists(file))
  Sys.chmod(file, "600")
  system2("truncate", c("-s", "40", file))
  Sys.chmod(file, "400") # sealed again (a POSIX shm reader refuses it otherwise)
  # (POSIX shm sizes read back are whole pages, macOS's rule: the 40 bytes
  # are 4096, a region shorter than its header says)
  memfd <- region_backend() == "memfd"
  expect_mori_error(map_shared(name), "truncated", if (memfd) "truncated" else "cut the published file short")
  # the descriptor and mapping opened before the check are released by the
  # time the error is signalled: 500 failed opens leave none behind
  fds <- length(list.files("/proc/self/fd"))
  for (i in 1:500) error_of(map_shared(name))
  expect_equal(length(list.files("/proc/self/fd")), fds)
  skip_if_not(memfd, "the message names the page-rounded size")
  expect_snapshot(show_error(map_shared(name)), cran = TRUE, transform = scrub)
})

test_that("a region too large for memory is no_space", {
  # a compact sequence of 1e12 doubles: 8 TB, refused before anything is made
  expect_mori_error(share(1:1e12), "no_space", "could not reserve 8.0 TB")
  expect_mori_error(share(1:1e12, name = paste0(err_tag, "_big")), "no_space", "/dev/shm")
  expect_false(file.exists(file.path("/dev/shm", paste0("mori.", err_tag, "_big"))))
  expect_snapshot(show_error(share(1:1e12)), cran = TRUE)
})

test_that("a published file of another user is out of sight", {
  skip_if_not(identical(unname(Sys.info()[["effective_user"]]), "root"), "needs root")
  name <- paste0(err_tag, "_theirs")
  local(share(as.double(1:10), name = name))
  on.exit(unshare(name))
  full_gc()
  file <- file.path("/dev/shm", paste0("mori.", name))
  skip_if(system2("chown", c("65534", file)) != 0, "chown failed")
  expect_mori_error(map_shared(name), "out_of_sight", "belongs to another user")
  expect_snapshot(show_error(map_shared(name)), cran = TRUE, transform = scrub)
})

test_that("too deep an object is limit", {
  deep <- list()
  for (i in 1:1002) deep <- list(deep)
  expect_mori_error(share(deep), "limit", "nested more than 1000 levels")
  expect_snapshot(show_error(share(deep)), cran = TRUE)
})

# No ordinary input reaches these two on a healthy system: a test-only entry
# point raises them through the paths the real failures take (a failed
# system call as OsError::Io; a Rust panic caught by error::guard).
test_that("a system call failing unexpectedly is system", {
  expect_mori_error(mori:::test_raise_kind("system"), "system", "^test_raise_kind failed: ")
  expect_snapshot(show_error(mori:::test_raise_kind("system")), cran = TRUE)
})

test_that("a Rust panic is internal, an R error, and the session goes on", {
  expect_mori_error(mori:::test_raise_kind("internal"), "internal", "^internal error in mori: test_raise_kind")
  # the message says where the panic happened (the line moves with edits)
  expect_snapshot(show_error(mori:::test_raise_kind("internal")), cran = TRUE,
                  transform = function(lines) sub("[.]rs:[0-9]+[)]", ".rs:<line>)", lines))
  expect_identical(share(as.double(1:10))[[10]], 10)
})

test_that("a Rust panic prints nothing: its message is in the R error alone", {
  skip_if_not_installed("callr")
  err <- tempfile()
  on.exit(unlink(err))
  got <- callr::r(function() {
    msgs <- vapply(1:2, function(i) {
      tryCatch(mori:::test_raise_kind("internal"), mori_error_internal = function(e) conditionMessage(e))
    }, "")
    list(msgs = msgs, after = mori::share(as.double(1:10))[[10]])
  }, libpath = .libPaths(), stderr = err, env = c(callr::rcmd_safe_env(), RUST_BACKTRACE = "1"))
  expect_identical(readLines(err), character())
  # each error carries its own panic's message and place, once
  for (msg in got$msgs) {
    expect_match(msg, "^internal error in mori: test_raise_kind[(][)] was asked to panic [(]at src/testing[.]rs:[0-9]+[)]\n")
  }
  expect_identical(got$after, 10)
})

test_that("an error inside an ALTREP method is a classed condition too", {
  name <- paste0(err_tag, "_alt")
  x <- share(as.double(1:1e6), name = name)
  on.exit(unshare(name))
  file <- file.path("/dev/shm", paste0("mori.", name))
  skip_if_not(file.exists(file))
  Sys.chmod(file, "600")
  system2("truncate", c("-s", "0", file))
  e <- error_of(x[5e5])
  expect_s3_class(e, c("mori_error_truncated", "mori_error", "error", "condition"), exact = TRUE)
  expect_error(sum(x), class = "mori_error_truncated")
})

test_that("a region of another PID namespace is out of sight, not freed", {
  # (memfd regions are opened through the owner's /proc entry, which
  # another PID namespace hides; POSIX shm names are machine-wide)
  skip_without_memfd()
  skip_if(Sys.which("unshare") == "", "unshare not available")
  probe <- suppressWarnings(system2("unshare", c("--pid", "--fork", "--mount-proc", "true"),
                                    stdout = FALSE, stderr = FALSE))
  skip_if(probe != 0, "cannot make a PID namespace here")
  x <- share(as.double(1:1000))
  name <- paste0(err_tag, "_ns")
  p <- share(as.double(1:10), name = name)
  on.exit(unshare(name))
  fx <- tempfile(fileext = ".rds")
  fp <- tempfile(fileext = ".rds")
  on.exit(unlink(c(fx, fp)), add = TRUE)
  saveRDS(x, fx)
  saveRDS(p, fp)
  script <- tempfile(fileext = ".R")
  on.exit(unlink(script), add = TRUE)
  writeLines(c(
    sprintf(".libPaths(c(%s, .libPaths()))", deparse(dirname(system.file(package = "mori")))),
    "library(mori)",
    "what <- function(expr) tryCatch({ force(expr); 'mapped' }, error = function(e) class(e)[1])",
    sprintf("cat('REF', what(readRDS('%s')), '\\n')", fx),
    sprintf("cat('MSG', tryCatch(readRDS('%s'), error = conditionMessage), sep = '\\n')", fx),
    sprintf("cat('PUB', what(stopifnot(identical(readRDS('%s'), as.double(1:10)))), '\\n')", fp),
    sprintf("cat('NAME', what(map_shared('%s')), '\\n')", shared_name(x))
  ), script)
  out <- suppressWarnings(system2("unshare", c("--pid", "--fork", "--mount-proc",
                                              file.path(R.home("bin"), "Rscript"), "--vanilla", script),
                                  stdout = TRUE, stderr = TRUE))
  # a reference knows its PID namespace: the owner may be alive, unseen
  expect_true(any(grepl("^REF mori_error_out_of_sight", out)), info = paste(out, collapse = "\n"))
  # a published region is a file: it opens from any PID namespace
  expect_true(any(grepl("^PUB mapped", out)), info = paste(out, collapse = "\n"))
  # a bare name carries no namespace: it can only be said to be not found
  expect_true(any(grepl("^NAME mori_error_(not_found|out_of_sight)", out)), info = paste(out, collapse = "\n"))
  msg <- out[which(out == "MSG") + 1:2]
  expect_snapshot(cat(msg, sep = "\n"), cran = TRUE, transform = scrub)
  expect_identical(x[], as.double(1:1000))
})
