# A reference only ever opens the region it was made for (issue 17, item 2).
#
# A serialized reference carries the region's name, this machine's id and
# the random nonce written in the region's header at creation. A name can
# come to mean another region: a published name unshared and published
# again, or /mori_<pid>_<serial>_<fd> made again by a later process that got
# the same pid (pid_max is 32768: reuse is quick). Such a reference must say
# "not found", never open the new region and attach its own attributes to
# unrelated data. And the attributes a stream carries are checked against
# the region's object before they are attached.

sr_tag <- sprintf("stale%x", Sys.getpid())
sr_err <- function(expr) tryCatch({
  force(expr)
  ""
}, error = function(e) conditionMessage(e))

# The reference state inside a serialized stream (XDR): a raw vector
# [tag: 1][host id: 4][PID namespace: 2][nonce: 8][name as varints, a
# packed region's offset after pid, serial and descriptor],
# preceded by its RAWSXP flags and length (src/rust/core/src/reference.rs).
# sr_find() gives its parts with the name as text; sr_rewrite() writes a
# name given as text back in binary (one that is not a name, as its bytes).
sr_varints <- function(b) {
  out <- numeric()
  v <- 0
  k <- 0
  for (x in as.integer(b)) {
    v <- v + (x %% 128) * 128^k
    k <- k + 1
    if (x < 128) {
      out <- c(out, v)
      v <- 0
      k <- 0
    }
  }
  out
}
sr_varint <- function(v) {
  out <- raw()
  repeat {
    if (v < 128) return(c(out, as.raw(v)))
    out <- c(out, as.raw(v %% 128 + 128))
    v <- v %/% 128
  }
}
sr_name_of <- function(tag, tail) {
  tag <- as.integer(tag)
  if (bitwAnd(tag, 8L)) {
    n <- as.integer(tail[1])
    base <- rawToChar(tail[1 + seq_len(n)])
    v <- sr_varints(tail[-seq_len(n + 1)])
  } else {
    v <- sr_varints(tail)
    base <- sprintf("/mori_%s_%s_%s", as.hexmode(v[1]), as.hexmode(v[2]), as.hexmode(v[3]))
    v <- v[-(1:3)]
    if (bitwAnd(tag, 16L)) {
      base <- sprintf("%s+%s", base, as.hexmode(v[1]))
      v <- v[-1]
    }
  }
  target <- switch(bitwAnd(tag, 3L) + 1L, "", sprintf("#%.0f", v[1]),
                   paste0("[", paste(sprintf("%.0f", v[1 + seq_len(v[1])]), collapse = ","), "]"))
  v <- v[-seq_len(switch(bitwAnd(tag, 3L) + 1L, 0, 1, 1 + v[1]))]
  slice <- if (bitwAnd(tag, 4L)) sprintf("@%.0f:%.0f", v[1] + 1, v[1] + v[2]) else ""
  paste0(base, target, slice)
}
sr_encode_name <- function(name) {
  m <- regmatches(name, regexec(
    "^(/mori_([0-9a-f]+)_([0-9a-f]+)_([0-9a-f]+)(\\+([0-9a-f]+))?|([A-Za-z0-9][A-Za-z0-9._-]*))(#([0-9]+)|\\[([0-9,]+)\\])?(@([0-9]+):([0-9]+))?$",
    name))[[1]]
  if (!length(m)) return(list(tag = as.raw(0x40), tail = charToRaw(name)))
  tag <- 0x40
  if (nzchar(m[3])) {
    tail <- c(sr_varint(strtoi(m[3], 16L)), sr_varint(strtoi(m[4], 16L)), sr_varint(strtoi(m[5], 16L)))
    if (nzchar(m[7])) {
      tag <- tag + 16
      tail <- c(tail, sr_varint(strtoi(m[7], 16L)))
    }
  } else {
    tag <- tag + 8
    tail <- c(as.raw(nchar(m[8]) %% 256), charToRaw(m[8]))
  }
  if (nzchar(m[10])) {
    tag <- tag + 1
    tail <- c(tail, sr_varint(as.numeric(m[10])))
  } else if (nzchar(m[11])) {
    tag <- tag + 2
    p <- as.numeric(strsplit(m[11], ",")[[1]])
    tail <- c(tail, sr_varint(length(p)), unlist(lapply(p, sr_varint)))
  }
  if (nzchar(m[12])) {
    tag <- tag + 4
    from <- as.numeric(m[13])
    tail <- c(tail, sr_varint(from - 1), sr_varint(as.numeric(m[14]) - from + 1))
  }
  list(tag = as.raw(tag), tail = tail)
}

sr_find <- function(s) {
  hits <- reference_host_at(s) - 1L
  hits <- hits[hits > 8]
  hits <- hits[vapply(hits, function(at) {
    all(s[(at - 8):(at - 5)] == as.raw(c(0, 0, 0, 24))) && as.integer(s[at]) %/% 32L == 2L
  }, TRUE)]
  lapply(hits, function(at) {
    len <- sum(as.integer(s[(at - 4):(at - 1)]) * 256^(3:0))
    list(at = at, len = len, ns = s[(at + 5):(at + 6)], nonce = s[(at + 7):(at + 14)],
         name = sr_name_of(s[at], s[(at + 15):(at + len - 1)]))
  })
}

# `s` with its `which`-th reference changed by `edit(ref)` (returning a ref).
sr_rewrite <- function(s, edit, which = 1) {
  ref <- sr_find(s)[[which]]
  new <- edit(ref)
  name <- sr_encode_name(new$name)
  body <- c(name$tag, reference_host(), new$ns, new$nonce, name$tail)
  len <- length(body)
  len_bytes <- as.raw(c(len %/% 2^24, (len %/% 2^16) %% 256, (len %/% 2^8) %% 256, len %% 256))
  c(s[seq_len(ref$at - 5)], len_bytes, body, s[(ref$at + ref$len):length(s)])
}

sr_child <- function(fun, args = list()) callr::r(fun, args = args, libpath = .libPaths())

test_that("the reference carries the region's nonce and is shorter than name + hex host", {
  x <- share(rnorm(1e5))
  s <- serialize(x, NULL)
  refs <- sr_find(s)
  expect_length(refs, 1)
  expect_identical(refs[[1]]$name, shared_name(x))
  expect_false(all(refs[[1]]$nonce == as.raw(0)))
  # Two regions never share a nonce (64 random bits).
  nonces <- vapply(1:50, function(i) paste(sr_find(serialize(share(c(i, 0.5)), NULL))[[1]]$nonce, collapse = ""), "")
  expect_equal(anyDuplicated(nonces), 0)
  # 123 bytes on R 4.2 here (138 with the name as text after 20 bytes of
  # tags, 150 with the hex host tag and no nonce).
  expect_lt(length(s), 130)
  # the reference rewritten as it was gives the same stream
  expect_identical(sr_rewrite(s, identity), s)
})

test_that("a packed region's reference carries its offset and opens only that object", {
  x1 <- share(c(1, 2, 3))
  x2 <- share(c(4, 5, 6, 7))
  n1 <- shared_name(x1)
  n2 <- shared_name(x2)
  # both small: slots of one pack, told apart by their offsets
  expect_match(n1, "[+][0-9a-f]+$")
  expect_identical(sub("[+].*$", "", n1), sub("[+].*$", "", n2))
  s1 <- serialize(x1, NULL)
  r1 <- sr_find(s1)[[1]]
  r2 <- sr_find(serialize(x2, NULL))[[1]]
  expect_identical(r1$name, n1)
  expect_identical(r2$name, n2)
  expect_lt(length(s1), 130)
  expect_identical(sr_rewrite(s1, identity), s1)
  expect_identical(unserialize(s1), c(1, 2, 3))
  # x2's offset with x1's nonce: a region is there, not the one meant
  forged <- sr_rewrite(s1, function(r) {
    r$name <- n2
    r
  })
  expect_match(sr_err(unserialize(forged)), "not found")
  # with x2's nonce too, it is x2's reference, and opens x2
  moved <- sr_rewrite(s1, function(r) {
    r$name <- n2
    r$nonce <- r2$nonce
    r
  })
  expect_identical(unserialize(moved), c(4, 5, 6, 7))
  # an offset with no region header (inside x1's slot) opens nothing
  off <- strtoi(sub("^.*[+]", "", n1), 16L)
  inside <- sr_rewrite(s1, function(r) {
    r$name <- sprintf("%s+%x", sub("[+].*$", "", n1), off + 64)
    r
  })
  expect_match(sr_err(unserialize(inside)), "no longer exists")
})

test_that("a reference saved before a published name was published again is not found", {
  skip_if_not_installed("callr")
  skip_on_cran()
  name <- paste0(sr_tag, "_again")
  olds <- list(
    named3 = c(a = 1, b = 2, c = 3),
    matrix = matrix(as.double(1:6), 2, dimnames = list(c("r1", "r2"), NULL)),
    factor = factor(c("lo", "hi", "lo")),
    strings = c(x = "p", y = "q"),
    ints = 1:5
  )
  news <- list(
    longer = rnorm(1e5),
    other_type = letters,
    same_shape = c(a = 10, b = 20, c = 30),
    identical = NULL # the same object again: a new region all the same
  )
  cases <- 0
  for (old_nm in names(olds)) {
    for (new_nm in names(news)) {
      old <- olds[[old_nm]]
      new <- if (new_nm == "identical") old else news[[new_nm]]
      s <- local({
        x <- share(old, name = name)
        serialize(map_shared(name), NULL)
      })
      expect_identical(unserialize(s), old)
      unshare(name)
      full_gc() # this process lets go of the old region
      y <- share(new, name = name)
      label <- paste(old_nm, "->", new_nm)
      expect_match(sr_err(unserialize(s)), "not found", label = label)
      # The name itself names the new region.
      expect_identical(map_shared(name)[], new[], label = label)
      # Another process, which never saw the old region, says the same.
      if (old_nm == "named3") expect_match(sr_child(function(s) tryCatch({
        unserialize(s)
        "opened"
      }, error = function(e) conditionMessage(e)), list(s = s)), "not found", label = label)
      unshare(name)
      rm(y)
      full_gc()
      cases <- cases + 1
    }
  }
  expect_equal(cases, 20)
})

test_that("a process still holding the old region reads the old object from an old reference", {
  name <- paste0(sr_tag, "_held")
  x <- share(c(a = 1, b = 2), name = name)
  s <- serialize(x, NULL)
  unshare(name)
  y <- share(rnorm(10), name = name)
  on.exit(unshare(name))
  # The reference was made for the region x still maps: that is what it opens.
  expect_identical(unserialize(s), c(a = 1, b = 2))
})

test_that("a forged reference with the right name but another nonce is not found", {
  skip_on_cran()
  name <- paste0(sr_tag, "_forged")
  objs <- list(anonymous = share(c(a = 1, b = 2, c = 3)), published = share(c(a = 1, b = 2, c = 3), name = name))
  on.exit(unshare(name))
  for (nm in names(objs)) {
    s <- serialize(objs[[nm]], NULL)
    expect_identical(unserialize(s), c(a = 1, b = 2, c = 3))
    for (flip in list(1L, 8L, 1:8)) {
      forged <- sr_rewrite(s, function(r) {
        r$nonce[flip] <- xor(r$nonce[flip], as.raw(0x5a))
        r
      })
      expect_match(sr_err(unserialize(forged)), "not found", label = nm)
    }
    zero <- sr_rewrite(s, function(r) {
      r$nonce[] <- as.raw(0)
      r
    })
    expect_match(sr_err(unserialize(zero)), "not found", label = nm)
  }
  # Element references (R 4.2 lists, attribute nodes) carry it too.
  # (large enough to travel as a reference on R < 4.3 too)
  big <- setNames(as.double(1:1e4), paste0("n", 1:1e4))
  l <- share(list(a = big, b = letters))
  s <- serialize(l[["a"]], NULL)
  forged <- sr_rewrite(s, function(r) {
    r$nonce[3] <- xor(r$nonce[3], as.raw(1))
    r
  })
  expect_match(sr_err(unserialize(forged)), "not found")
  expect_identical(unserialize(s), big)
})

test_that("a reference to a live region of another process with a wrong nonce is not found", {
  skip_on_cran()
  skip_if_not_installed("callr")
  bg <- callr::r_bg(function() {
    options(mori.materialize_own = FALSE) # a callr child sends its own regions' values otherwise
    x <- mori::share(c(a = 1, b = 2, c = 3))
    cat(paste(serialize(x, NULL), collapse = ""), "\n")
    Sys.sleep(60)
  }, libpath = .libPaths(), stdout = "|")
  on.exit(bg$kill())
  hex <- rel_line(bg)
  s <- as.raw(strtoi(substring(hex, seq(1, nchar(hex), 2), seq(2, nchar(hex), 2)), 16L))
  expect_identical(unserialize(s), c(a = 1, b = 2, c = 3))
  full_gc()
  forged <- sr_rewrite(s, function(r) {
    r$nonce[1] <- xor(r$nonce[1], as.raw(0x80))
    r
  })
  expect_match(sr_err(unserialize(forged)), "not found")
})

test_that("pid reuse: a reference naming another live process's region of the same serial and fd is not found", {
  skip_on_cran()
  skip_if_not_installed("callr")
  # Both processes open files until their lowest free descriptor is 40,
  # so that their first region (serial 1) gets descriptor 40 in each.
  fill_fds <- function() {
    used <- function() as.integer(list.files("/proc/self/fd"))
    cons <- list()
    while (min(setdiff(0:4096, used())) < 40) cons[[length(cons) + 1]] <- file(tempfile(), "w")
    cons
  }
  # Process A shares c(a = 1, b = 2, c = 3) as its first region (serial 1,
  # a pack: small regions are packed) and a 100 x 100 matrix as its second
  # (serial 2, a memory file of its own).
  a <- callr::r(function(fill_fds) {
    options(mori.materialize_own = FALSE) # a callr child sends its own regions' values otherwise
    cons <- fill_fds()
    x <- mori::share(c(a = 1, b = 2, c = 3))
    z <- mori::share(matrix(as.double(1:1e4), 100))
    list(pid = Sys.getpid(), names = c(mori::shared_name(x), mori::shared_name(z)),
         s = list(serialize(x, NULL), serialize(z, NULL)))
  }, list(fill_fds = fill_fds), libpath = .libPaths())
  expect_match(a$names[1], sprintf("^/mori_%x_1_[0-9a-f]+[+]40$", a$pid))
  expect_match(a$names[2], sprintf("^/mori_%x_2_[0-9a-f]+$", a$pid))
  fd_a <- strtoi(sub("^.*_", "", sub("[+].*$", "", a$names)), 16L)
  expect_gte(fd_a[1], 39)
  # Process B, alive, makes its first two regions (serials 1 and 2) of the
  # same kinds on the same descriptor numbers: what a later process that
  # got A's pid would do.
  bg <- callr::r_bg(function(fill_fds) {
    cons <- fill_fds()
    y <- mori::share(c(10, 20, 30, 40))
    w <- mori::share(rnorm(1e5))
    cat(mori::shared_name(y), mori::shared_name(w), "\n")
    Sys.sleep(60)
  }, args = list(fill_fds = fill_fds), libpath = .libPaths(), stdout = "|")
  on.exit(bg$kill())
  b_names <- strsplit(rel_line(bg), " ")[[1]]
  expect_identical(b_names, sprintf(c("/mori_%x_1_%x+40", "/mori_%x_2_%x"), bg$get_pid(), fd_a))
  # A's references, with B's pid in the names: the regions they name exist
  # and are called what the names say, but they are not the ones the
  # references were made for (3 names would be attached to 4 values, a
  # 100 x 100 dim to 1e5 values).
  for (i in 1:2) {
    forged <- sr_rewrite(a$s[[i]], function(r) {
      r$name <- b_names[i]
      r
    })
    expect_match(sr_err(unserialize(forged)), "not found", label = b_names[i])
  }
  # B's regions themselves open by name.
  expect_identical(map_shared(b_names[1])[], c(10, 20, 30, 40))
  expect_length(map_shared(b_names[2]), 1e5)
})

test_that("attributes in a hand-edited stream are checked against the region's object", {
  skip_on_cran()
  big <- share(rnorm(1e5))
  ints <- share(1:1e5)
  strs <- share(as.character(1:1e5))
  five <- share(c(1, 2, 3, 4, 5))
  target <- function(x) sr_find(serialize(x, NULL))[[1]]
  # Each donor's attributes, moved onto another region's reference.
  donors <- list(
    names = c(a = 1, b = 2, c = 3),
    dim = matrix(as.double(1:4), 2),
    dim_3d = array(as.double(1:8), c(2, 2, 2)),
    dimnames = matrix(as.double(1:4), 2, dimnames = list(c("a", "b"), c("c", "d"))),
    tsp = ts(as.double(1:4)),
    class_names = structure(c(a = 1, b = 2), class = "foo")
  )
  cases <- 0
  for (dn in names(donors)) {
    s <- serialize(share(donors[[dn]]), NULL)
    for (tn in c("big", "ints", "strs", "five")) {
      tgt <- target(get(tn))
      forged <- sr_rewrite(s, function(r) {
        r$name <- tgt$name
        r$nonce <- tgt$nonce
        r
      })
      msg <- sr_err(unserialize(forged))
      expect_match(msg, "invalid", label = paste(dn, "on", tn))
      expect_false(grepl("internal error", msg), label = paste(dn, "on", tn))
      cases <- cases + 1
    }
  }
  expect_equal(cases, 24)
  # Attributes that fit are attached, as R's own default would.
  ok <- serialize(share(c(v = 1, w = 2, x = 3, y = 4, z = 5)), NULL)
  moved <- sr_rewrite(ok, function(r) {
    t5 <- target(five)
    r$name <- t5$name
    r$nonce <- t5$nonce
    r
  })
  expect_identical(unserialize(moved), c(v = 1, w = 2, x = 3, y = 4, z = 5))
  # (each shared object is held while its reference is read: one that
  # nothing holds may be collected, and its region freed, before
  # unserialize() maps it)
  sm <- share(matrix(1:6, 2))
  m <- serialize(sm, NULL)
  expect_identical(unserialize(m), matrix(1:6, 2))
  # S4 bit and object bit survive (UnserializeEX sets what R's default sets).
  f <- factor(c("a", "b"))
  sf <- share(f)
  expect_identical(unserialize(serialize(sf, NULL)), f)
  expect_true(is.object(unserialize(serialize(sf, NULL))))
})

test_that("a malformed reference state is refused cleanly", {
  x <- share(c(1, 2, 3))
  s <- serialize(x, NULL)
  ref <- sr_find(s)[[1]]
  # Cut the name to nothing, to garbage, or to another form.
  for (name in c("", "x", "/mori_", "/mori_1_1", "\x01\x02", strrep("a", 5000))) {
    bad <- sr_rewrite(s, function(r) {
      r$name <- name
      r
    })
    msg <- sr_err(unserialize(bad))
    expect_true(nzchar(msg), label = name)
    expect_false(grepl("internal error", msg), label = name)
  }
})
