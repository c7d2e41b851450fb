# A failed share() leaves nothing: no published file, no descriptor, no
# mapping, and a chosen name is free again, whichever stage failed (the
# name taken, not enough memory, an object refused part-way through the
# planning walk; an interrupt part-way through the copy is in
# test-interrupt.R).

# What this process holds of mori regions: descriptors and mappings.
mori_held <- function() {
  fds <- suppressWarnings(Sys.readlink(list.files("/proc/self/fd", full.names = TRUE)))
  maps <- readLines("/proc/self/maps")
  c(fds = sum(grepl("memfd:mori|/dev/shm/mori", fds)), maps = sum(grepl("memfd:mori|/dev/shm/mori", maps)))
}

published_file <- function(name) file.path("/dev/shm", paste0("mori.", name))

nested <- function(depth, leaf) {
  x <- leaf
  for (i in seq_len(depth)) x <- list(x)
  x
}

# Objects that share() refuses, and at which stage.
refused_objects <- function() {
  list(
    huge_vector = 1:1e15,
    huge_element = list(a = 1, b = letters, c = 1:1e15),
    huge_attribute = structure(1:3, big = 1:1e15),
    huge_deep_element = list(list(list(1, 1:1e15))),
    too_deep = nested(1100, 1),
    too_deep_after_data = list(a = as.double(1:1e5), b = nested(1100, "x")),
    too_deep_attribute = structure(1:3, deep = nested(1100, 2L))
  )
}

test_that("a share refused at any stage leaves nothing behind, named or not", {
  objects <- refused_objects()
  full_gc()
  before <- mori_held()
  for (what in names(objects)) {
    for (named in c(FALSE, TRUE)) {
      name <- paste0("refused-", what, "-", Sys.getpid())
      label <- paste(what, if (named) "published" else "ordinary")
      err <- tryCatch(
        if (named) share(objects[[what]], name = name) else share(objects[[what]]),
        error = function(e) e
      )
      expect_s3_class(err, "mori_error")
      expect_false(file.exists(published_file(name)), label = label)
      full_gc()
      expect_identical(mori_held(), before, label = label)
      if (named) {
        # The name is free again.
        expect_identical(share(1:3, name = name), 1:3, label = label)
        expect_true(unshare(name), label = label)
      }
    }
  }
})

test_that("a taken name is refused without touching the region that has it", {
  name <- paste0("taken-", Sys.getpid())
  on.exit(unshare(name))
  first <- share(c(1.5, 2.5), name = name)
  held <- mori_held()
  for (x in list(1:10, letters, list(a = 1, b = "z"), as.double(1:1e5), 1:1e15)) {
    err <- tryCatch(share(x, name = name), error = function(e) e)
    expect_s3_class(err, "mori_error_name_taken")
    expect_identical(mori_held(), held)
    expect_identical(map_shared(name), c(1.5, 2.5))
    expect_true(file.exists(published_file(name)))
  }
  unshare(name)
  expect_false(file.exists(published_file(name)))
  expect_identical(share(letters, name = name), letters)
})
