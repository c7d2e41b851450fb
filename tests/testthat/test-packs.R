# No ceiling on live shared objects (issue 18, item 2). Regions of at most
# 32 KB are packed into shared memory files ("packs"), so 1e5 live small
# objects cost a few dozen descriptors and mappings, in the owner and in
# every worker, instead of one of each per object (which stopped at the
# hard descriptor limit, ~20,000 here).

pk_tag <- sprintf("pk%x", Sys.getpid())
pk_err <- function(expr) tryCatch({
  force(expr)
  ""
}, error = function(e) conditionMessage(e))

# A packed region's name: "/mori_<pid>_<serial>_<fd>+<offset>".
pk_packed <- function(name) grepl("^/mori_[0-9a-f]+_[0-9a-f]+_[0-9a-f]+[+][0-9a-f]+$", name)
pk_pack_of <- function(name) sub("[+].*$", "", name)
pk_offset <- function(name) strtoi(sub("^.*[+]", "", name), 16L)
pk_hex <- function(n) {
  digits <- integer()
  repeat {
    digits <- c(n %% 16, digits)
    n <- n %/% 16
    if (n == 0) break
  }
  paste(c(0:9, letters[1:6])[digits + 1], collapse = "")
}

# The stream `s` with the bytes of `from` (a region name inside it) replaced
# by `to`, of the same length.
# A packed name as a serialized reference writes it (binary, see
# src/rust/core/src/reference.rs): pid, serial, descriptor and offset as
# LEB128 varints.
pk_varint <- function(v) {
  out <- raw()
  repeat {
    if (v < 128) return(c(out, as.raw(v)))
    out <- c(out, as.raw(v %% 128 + 128))
    v <- v %/% 128
  }
}
pk_name_bytes <- function(name) {
  parts <- strsplit(sub("^/mori_", "", name), "[_+]")[[1]]
  unlist(lapply(strtoi(parts, 16L), pk_varint))
}
# `s` (a serialized reference to the packed region `from`) naming `to`
# instead, when both encode to as many bytes.
pk_swap_name <- function(s, from, to) {
  f <- pk_name_bytes(from)
  t <- pk_name_bytes(to)
  stopifnot(length(f) == length(t))
  n <- length(f)
  at <- which(vapply(seq_len(length(s) - n + 1), function(i) all(s[i:(i + n - 1)] == f), TRUE))
  stopifnot(length(at) == 1)
  s[at:(at + n - 1)] <- t
  s
}

# Runs `code` in `Rscript` under `ulimit -n <limit>`; returns its output lines.
pk_child <- function(code, limit = 1024) {
  script <- tempfile(fileext = ".R")
  on.exit(unlink(script))
  writeLines(code, script)
  cmd <- sprintf(
    "ulimit -n %d && R_LIBS=%s exec %s --vanilla %s", limit,
    shQuote(paste(.libPaths(), collapse = ":")), shQuote(file.path(R.home("bin"), "Rscript")), shQuote(script)
  )
  suppressWarnings(system2("bash", c("-c", shQuote(cmd)), stdout = TRUE, stderr = TRUE))
}

pk_field <- function(out, key) {
  line <- grep(paste0("^", key, ": "), out, value = TRUE)
  if (length(line) != 1) stop("child output lacks '", key, "':\n", paste(out, collapse = "\n"))
  trimws(sub(paste0("^", key, ": "), "", line))
}

test_that("1e5 live small objects take a few descriptors and mappings, and all go back", {
  skip_without_memfd()
  # Under a limit of 1024 descriptors (the old design stopped at ~900
  # objects there), in a fresh process whose counts nothing else moves.
  out <- pk_child(c(
    "library(mori)",
    "counts <- function() c(length(list.files('/proc/self/fd')),",
    "  sum(grepl('memfd:mori_', readLines('/proc/self/maps'))), nrow(shared_regions()))",
    "invisible(gc()); before <- counts()",
    "t <- system.time(xs <- lapply(1:1e5, function(i) share(c(i, i + 0.5))))[['elapsed']]",
    "during <- counts()",
    "names <- vapply(xs, shared_name, '')",
    "ok <- all(vapply(1:1e5, function(i) identical(xs[[i]][], c(i, i + 0.5)), TRUE))",
    "cat('before:', before, '\\n')",
    "cat('during:', during, '\\n')",
    "cat('packs:', length(unique(sub('[+].*$', '', names))), '\\n')",
    "cat('packed:', all(grepl('[+]', names)), '\\n')",
    "cat('values:', ok, '\\n')",
    "cat('seconds:', t, '\\n')",
    "rm(xs); invisible(gc()); invisible(gc())",
    "cat('after:', counts(), '\\n')",
    "y <- share(c(1, 2.5))",
    "cat('again:', identical(y[], c(1, 2.5)), counts()[2], '\\n')"
  ))
  num <- function(key) as.numeric(strsplit(pk_field(out, key), " +")[[1]])
  before <- num("before")
  during <- num("during")
  packs <- num("packs")
  expect_identical(pk_field(out, "packed"), "TRUE")
  expect_identical(pk_field(out, "values"), "TRUE")
  expect_equal(during[3], 1e5)
  # One descriptor and one mapping per pack: 1e5 objects in a few dozen.
  expect_lte(packs, 40)
  expect_equal(during[1] - before[1], packs)
  expect_equal(during[2] - before[2], packs)
  # All collected: no pack, no mapping, no region left.
  expect_equal(num("after"), before)
  expect_identical(pk_field(out, "again"), "TRUE 1")
})

test_that("a worker maps each pack once, whatever the number of objects it opens", {
  skip_without_memfd()
  skip_if_not_installed("callr")
  xs <- lapply(1:1e5, function(i) share(c(i, i + 0.5)))
  packs <- unique(pk_pack_of(vapply(xs, shared_name, "")))
  worker <- function(xs) {
    mori_maps <- function() sum(grepl("memfd:mori_", readLines("/proc/self/maps")))
    fds <- function() length(list.files("/proc/self/fd"))
    # `xs` arrives unserialized: every object is open already.
    sums <- vapply(xs, function(x) x[[2]] - x[[1]], 0)
    list(ok = all(sums == 0.5), first = xs[[1]][], last = xs[[length(xs)]][], maps = mori_maps(), fds = fds(),
         regions = nrow(mori::shared_regions()), pid = Sys.getpid())
  }
  r <- callr::r(worker, list(xs = xs), libpath = .libPaths())
  expect_true(r$ok)
  expect_identical(r$first, c(1, 1.5))
  expect_identical(r$last, c(1e5, 1e5 + 0.5))
  expect_equal(r$maps, length(packs))
  expect_equal(r$regions, 1e5)
  expect_lt(r$fds, length(packs) + 30)
  skip_if_not_installed("parallel")
  cl <- parallel::makePSOCKcluster(1)
  on.exit(parallel::stopCluster(cl))
  parallel::clusterCall(cl, function(lib) .libPaths(c(lib, .libPaths())), .libPaths())
  p <- parallel::clusterCall(cl, worker, xs)[[1]]
  expect_true(p$ok)
  expect_equal(p$maps, length(packs))
  expect_equal(p$regions, 1e5)
  expect_lt(p$fds, length(packs) + 30)
})

test_that("packed regions are found only by their own name, offset and nonce", {
  a <- share(c(1.5, 2.5))
  b <- share(c(3.5, 4.5))
  na <- shared_name(a)
  nb <- shared_name(b)
  expect_true(pk_packed(na) && pk_packed(nb))
  expect_identical(pk_pack_of(na), pk_pack_of(nb))
  expect_identical(map_shared(nb)[], c(3.5, 4.5))
  expect_identical(map_shared(paste0(nb, "@2:2"))[], 4.5)
  # a's reference rewritten to b's offset (same pack, a's nonce): not b.
  s <- serialize(a, NULL)
  if (length(pk_name_bytes(na)) == length(pk_name_bytes(nb))) {
    expect_match(pk_err(unserialize(pk_swap_name(s, na, nb))), "not found")
  }
  # Offsets that start no region with this name: in the pack header, not
  # aligned, inside another region, past the end, far away.
  pack <- pk_pack_of(na)
  for (off in c(0, 1, 8, 64 + 16, pk_offset(na) + 64, pk_offset(na) + 1, 2^22, 2^40)) {
    name <- sprintf("%s+%s", pack, pk_hex(off))
    expect_match(pk_err(map_shared(name)), "not found", label = name)
    expect_match(child_map_error(name), "not found", label = name)
  }
  # Malformed offsets are junk (NULL), as any malformed name.
  for (junk in c(paste0(pack, "+"), paste0(pack, "+01"), paste0(pack, "+x"), paste0(na, "+40"))) {
    expect_null(map_shared(junk), label = junk)
  }
  # A whole-region name for the pack, or a packed name for a whole region:
  # another memory file, not found.
  expect_match(pk_err(map_shared(pack)), "not found")
  big <- share(rnorm(1e5))
  expect_false(pk_packed(shared_name(big)))
  expect_match(pk_err(map_shared(paste0(shared_name(big), "+40"))), "not found")
  expect_identical(unserialize(s)[], c(1.5, 2.5))
})

test_that("a reference into a pack whose objects were all collected is not found", {
  skip_without_proc()
  skip_if_not_installed("callr")
  # In a child, so that no other object of this process shares the pack.
  r <- callr::r(function() {
    options(mori.materialize_own = FALSE)
    x <- mori::share(c(a = 1, b = 2))
    s <- serialize(x, NULL)
    name <- mori::shared_name(x)
    # The pack: a memfd file, or a POSIX shm object (/dev/shm on Linux).
    maps <- function() sum(grepl("memfd:mori_|/dev/shm/mori_", readLines("/proc/self/maps")))
    held <- maps()
    rm(x)
    for (i in 1:3) gc()
    list(held = held, after = maps(), err = tryCatch({
      unserialize(s)
      ""
    }, error = function(e) conditionMessage(e)), map = tryCatch({
      mori::map_shared(name)
      ""
    }, error = function(e) conditionMessage(e)))
  }, libpath = .libPaths())
  expect_equal(r$held, 1)
  expect_equal(r$after, 0)
  expect_match(r$err, "no longer exists")
  expect_match(r$map, "not found")
})

test_that("a killed owner leaves nothing behind; readers keep what they mapped", {
  skip_without_memfd()
  skip_if_not_installed("callr")
  out <- tempfile()
  on.exit(unlink(out), add = TRUE)
  bg <- bg_writer(function(out) {
    options(mori.materialize_own = FALSE)
    xs <- lapply(1:20000, function(i) mori::share(c(i, i + 0.5)))
    saveRDS(list(pid = Sys.getpid(), xs = xs[c(1, 10000, 20000)]), paste0(out, ".tmp"))
    file.rename(paste0(out, ".tmp"), out)
    Sys.sleep(120)
  }, out)
  on.exit(bg$kill(), add = TRUE)
  expect_true(file.exists(out))
  s <- readBin(out, "raw", file.size(out))
  got <- readRDS(out)
  names <- vapply(got$xs, shared_name, "")
  expect_true(all(pk_packed(names)))
  expect_identical(got$xs[[2]][], c(10000, 10000.5))
  bg$kill()
  bg$wait(10)
  expect_false(bg$is_alive())
  # What this process mapped it still reads.
  expect_identical(got$xs[[3]][], c(20000, 20000.5))
  expect_identical(got$xs[[1]][], c(1, 1.5))
  # Nothing in a file system, nothing for prune_shared() to remove.
  expect_length(list.files("/dev/shm", pattern = sprintf("_%x_", got$pid)), 0)
  expect_false(any(grepl(sprintf("%x", got$pid), prune_shared())))
  got <- NULL
  full_gc()
  # Once this process lets go, no process maps or holds the packs.
  expect_false(any(vapply(names, region_anywhere, TRUE)))
  expect_match(pk_err(readRDS(out)), "no longer exists")
})

test_that("a killed owner's pack names stay until prune_shared() removes them (POSIX shm)", {
  # POSIX shm names outlive their creator (memfd files do not: test above).
  skip_if_not(region_backend() == "posix-shm", "pack files have no names with this backend")
  skip_if_not(dir.exists("/dev/shm"), "shm names are not files here")
  skip_if_not_installed("callr")
  out <- tempfile()
  on.exit(unlink(out), add = TRUE)
  bg <- bg_writer(function(out) {
    xs <- lapply(1:2000, function(i) mori::share(c(i, i + 0.5)))
    saveRDS(list(pid = Sys.getpid(), xs = xs[c(1, 2000)]), paste0(out, ".tmp"))
    file.rename(paste0(out, ".tmp"), out)
    Sys.sleep(120)
  }, out)
  on.exit(bg$kill(), add = TRUE)
  expect_true(file.exists(out))
  got <- readRDS(out)
  expect_identical(got$xs[[2]][], c(2000, 2000.5))
  own <- function() list.files("/dev/shm", pattern = sprintf("^mori_%x_", got$pid))
  expect_gt(length(own()), 0)
  bg$kill()
  bg$wait(10)
  expect_false(bg$is_alive())
  expect_gt(length(own()), 0)
  prune_shared()
  expect_length(own(), 0)
  # What this process mapped it still reads.
  expect_identical(got$xs[[1]][], c(1, 1.5))
})

test_that("published names are never packed", {
  name <- paste0(pk_tag, "_pub")
  on.exit(unshare(name))
  x <- share(c(1.5, 2.5), name = name)
  expect_identical(shared_name(x), name)
  expect_true(file.exists(file.path("/dev/shm", paste0("mori.", name))))
  expect_identical(child_map_error(name), "")
  expect_identical(map_shared(name)[], c(1.5, 2.5))
  expect_null(map_shared(paste0(name, "+40")))
})

test_that("regions up to 32 KB are packed, larger ones are not, and both read right", {
  sizes <- c(1, 10, 100, 1000, 3900, 4200, 1e4)
  xs <- lapply(sizes, function(n) share(as.double(seq_len(n)) + 0.25))
  packed <- vapply(xs, function(x) pk_packed(shared_name(x)), TRUE)
  expect_identical(packed, sizes * 8 + 256 <= 32 * 1024)
  for (i in seq_along(sizes)) expect_identical(xs[[i]][], as.double(seq_len(sizes[i])) + 0.25)
  # Lists, strings and attributes pack too, and read back in another process.
  objs <- list(
    list = list(a = 1:3, b = list(c = "x", d = c(TRUE, NA))),
    strings = c(x = "caf\u00e9", y = NA, z = ""),
    frame = data.frame(n = 1:3, s = c("a", "b", "c")),
    factor = factor(c("lo", "hi", "lo"))
  )
  shared <- lapply(objs, share)
  expect_true(all(vapply(shared, function(x) pk_packed(sub("[\\[#].*$", "", shared_name(x))), TRUE)))
  show <- function(x) paste(deparse(x), collapse = "")
  back <- in_child(function(shared, show) vapply(shared, show, ""), list(shared = shared, show = show))
  expect_identical(back, vapply(objs, show, ""))
})

test_that("a private copy of a packed vector changes nothing its neighbours read", {
  # 24 KB of doubles: packed, and large enough for a copy-on-write mapping.
  left <- share(rep(1, 10))
  x <- share(as.double(1:3000))
  right <- share(rep(2, 10))
  expect_true(pk_packed(shared_name(x)))
  expect_identical(pk_pack_of(shared_name(left)), pk_pack_of(shared_name(right)))
  y <- x
  y[1] <- -1
  y[3000] <- -2
  expect_identical(y[c(1, 2, 3000)], c(-1, 2, -2))
  expect_false(is_shared(y))
  expect_identical(x[c(1, 3000)], c(1, 3000))
  expect_identical(left[], rep(1, 10))
  expect_identical(right[], rep(2, 10))
  expect_identical(in_child(function(x) x[c(1, 3000)], list(x = x)), c(1, 3000))
})

test_that("a forked child shares into a pack of its own", {
  skip_without_fork()
  skip_if_not_installed("parallel")
  before <- share(c(7, 8.5))
  names <- parallel::mclapply(1:2, function(i) {
    x <- share(c(i, 0.5))
    c(shared_name(x), Sys.getpid(), identical(before[], c(7, 8.5)))
  }, mc.cores = 2)
  after <- share(c(9, 10.5))
  for (n in names) {
    expect_identical(n[3], "TRUE")
    expect_true(startsWith(n[1], sprintf("/mori_%x_", as.integer(n[2]))))
    expect_false(identical(pk_pack_of(n[1]), pk_pack_of(shared_name(before))))
  }
  expect_identical(after[], c(9, 10.5))
  expect_identical(before[], c(7, 8.5))
})
