string_cases <- function() {
  latin1 <- iconv(c("caf\u00e9", "na\u00efve", "plain"), from = "UTF-8", to = "latin1")
  bytes <- c("\xff\xfe", "abc")
  Encoding(bytes) <- c("bytes", "unknown")
  list(
    empty = character(0),
    ascii = c("b", "a", "c", "a"),
    na_empty = c(NA, "", "x", NA, ""),
    utf8 = c("\u00e9t\u00e9", "\u65e5\u672c\u8a9e", "\U0001F600", "z", "\u00c5"),
    latin1 = latin1,
    bytes = bytes,
    mixed = c("ascii", enc2utf8("\u00fc"), latin1[1], NA),
    long = c(strrep("x", 1e5), "short"),
    named = c(first = "a", second = NA, third = "\u00e9"),
    many = paste0("s", sample(1e5)),
    factor_levels = levels(factor(c("b", "a", "\u00e9"))),
    # the text mori's string cache uses internally for "not made yet"
    sentinel = c("\001mori: string not made yet\001", "", "a", "\001mori: string not made yet\001")
  )
}

test_that("character vectors keep their values and encodings", {
  cases <- string_cases()
  for (nm in names(cases)) {
    x <- cases[[nm]]
    s <- share(x)
    expect_identical(s, x, label = nm)
    expect_identical(Encoding(s), Encoding(x), label = paste(nm, "Encoding"))
    expect_identical(is.na(s), is.na(x), label = paste(nm, "is.na"))
    expect_identical(nchar(s, type = "bytes"), nchar(x, type = "bytes"), label = paste(nm, "nchar bytes"))
    expect_true(is_shared(s), label = paste(nm, "is_shared"))
    back <- unserialize(serialize(s, NULL))
    expect_identical(back, x, label = paste(nm, "unserialized"))
    expect_identical(Encoding(back), Encoding(x), label = paste(nm, "unserialized Encoding"))
    m <- map_shared(shared_name(s))
    expect_identical(m, x, label = paste(nm, "mapped"))
    expect_identical(Encoding(m), Encoding(x), label = paste(nm, "mapped Encoding"))
  }
  # the bytes are the same bytes
  expect_identical(charToRaw(share(cases$latin1)[1]), charToRaw(cases$latin1[1]))
  expect_identical(charToRaw(share(cases$bytes)[1]), as.raw(c(0xff, 0xfe)))
  expect_identical(share(cases$latin1)[1] == "caf\u00e9", TRUE)
})

test_that("a scan in order makes strings ahead; scattered and short reads make what they touch", {
  skip_if_not_installed("callr")
  set.seed(3)
  vals <- sample(c("a", "b\u00e9", NA, "", paste0("v", 1:50)), 5000, replace = TRUE)
  x <- share(vals)
  expect_identical(x[[7]], vals[[7]])
  for (i in 100:110) expect_identical(x[[i]], vals[[i]])
  expect_identical(shared_info(x)$made, 12)
  # R's scan of the whole vector: every string made, right, in order
  expect_identical(x == "a", vals == "a")
  expect_identical(shared_info(x)$made, 5000)
  expect_identical(x[], vals)
  expect_identical(Encoding(x), Encoding(vals))
  # a scan that stops early made at most one batch more than it read
  y <- share(vals)
  for (i in 1:40) expect_identical(y[[i]], vals[[i]])
  made <- shared_info(y)$made
  expect_gt(made, 40)
  expect_lte(made, 40 + 256)
  expect_identical(y[], vals)
  # the same in another process, through a reference (held until the
  # child has mapped it)
  fresh <- share(vals)
  z <- callr::r(function(s) {
    v <- unserialize(s)
    list(eq = v == "a", all = v[], enc = Encoding(v))
  }, args = list(s = serialize(fresh, NULL)), libpath = .libPaths())
  expect_true(is_shared(fresh))
  expect_identical(z, list(eq = vals == "a", all = vals, enc = Encoding(vals)))
})

test_that("string operations give the same results as on the original", {
  cases <- string_cases()
  for (nm in setdiff(names(cases), "bytes")) {
    x <- cases[[nm]]
    s <- share(x)
    expect_identical(sort(s), sort(x), label = paste(nm, "sort"))
    expect_identical(sort(s, method = "radix"), sort(x, method = "radix"), label = paste(nm, "radix sort"))
    expect_identical(order(s), order(x), label = paste(nm, "order"))
    expect_identical(unique(s), unique(x), label = paste(nm, "unique"))
    expect_identical(duplicated(s), duplicated(x), label = paste(nm, "duplicated"))
    expect_identical(match(s, x), match(x, x), label = paste(nm, "match"))
    expect_identical(match(x, s), match(x, x), label = paste(nm, "match table"))
    expect_identical(s %in% x[1:min(2, length(x))], x %in% x[1:min(2, length(x))], label = paste(nm, "%in%"))
    expect_identical(nchar(s), nchar(x), label = paste(nm, "nchar"))
    expect_identical(paste(s, "!"), paste(x, "!"), label = paste(nm, "paste"))
    expect_identical(paste0(s, collapse = "|"), paste0(x, collapse = "|"), label = paste(nm, "collapse"))
    expect_identical(toupper(s), toupper(x), label = paste(nm, "toupper"))
    expect_identical(substr(s, 1, 2), substr(x, 1, 2), label = paste(nm, "substr"))
    expect_identical(table(s, useNA = "ifany", dnn = NULL), table(x, useNA = "ifany", dnn = NULL), label = paste(nm, "table"))
    expect_identical(factor(s), factor(x), label = paste(nm, "factor"))
    expect_identical(grepl("a", s), grepl("a", x), label = paste(nm, "grepl"))
    expect_identical(s == x, x == x, label = paste(nm, "=="))
    expect_identical(enc2utf8(s), enc2utf8(x), label = paste(nm, "enc2utf8"))
  }
  b <- share(cases$bytes)
  expect_identical(nchar(b, type = "bytes"), c(2L, 3L))
  expect_identical(unique(b), cases$bytes)
  expect_identical(match(b, cases$bytes), 1:2)
  expect_identical(b %in% cases$bytes[1], c(TRUE, FALSE))
  expect_identical(paste(b[2], "!"), "abc !")
})

test_that("a hash lookup on a shared vector finds every element", {
  x <- paste0("key", 1:1e5)
  s <- share(x)
  probe <- sample(x, 1000)
  expect_identical(match(probe, s), match(probe, x))
  expect_identical(s[match(probe, s)], probe)
  env_keys <- list2env(setNames(as.list(seq_along(s[1:100])), s[1:100]))
  expect_identical(get("key50", envir = env_keys), 50L)
  expect_identical(setNames(1:3, share(c("a", "b", "c")))[["b"]], 2L)
})

test_that("repeated texts of every encoding read right in any order, in any process", {
  skip_if_not_installed("callr")
  # A pool repeated many times: a text block smaller than the element count
  # (each distinct string looked up by its text's position), and a pool of
  # mostly distinct long texts (looked up in a small hashed table).
  latin1 <- iconv(c("caf\u00e9", "na\u00efve"), from = "UTF-8", to = "latin1")
  raw_bytes <- "\xff\xfe"
  Encoding(raw_bytes) <- "bytes"
  pool <- c("a", "", NA, enc2utf8("caf\u00e9"), latin1, raw_bytes, "\u65e5\u672c")
  set.seed(11)
  cases <- list(
    repeated = sample(pool, 2e4, replace = TRUE),
    distinct = c(sample(pool, 50, replace = TRUE), paste0(strrep("long", 5), 1:5000), latin1)
  )
  orders <- function(n) list(forward = seq_len(n), backward = rev(seq_len(n)), scattered = sample(n))
  read <- function(x, plain) {
    vapply(orders(length(plain)), function(o) {
      got <- vapply(o, function(i) x[[i]], "")
      identical(got, plain[o]) && identical(Encoding(got), Encoding(plain[o])) &&
        identical(lapply(got, charToRaw), lapply(plain[o], charToRaw))
    }, TRUE)
  }
  for (nm in names(cases)) {
    plain <- cases[[nm]]
    shared <- share(plain)
    expect_true(all(read(shared, plain)), label = paste(nm, "here"))
    # a fresh view through a reference, in another process: a scan in
    # order first (strings made ahead), then the other orders. `shared`
    # stays reachable until the child has mapped it (a reference to a
    # collected object would be "not found").
    got <- callr::r(function(s, plain, read, orders) {
      environment(read) <- environment()
      v <- unserialize(s)
      c(scan = identical(v == "a", plain == "a"), read(v, plain), whole = identical(v[], plain))
    }, args = list(s = serialize(shared, NULL), plain = plain, read = read, orders = orders),
    libpath = .libPaths())
    expect_true(is_shared(shared))
    expect_true(all(got), label = paste(nm, "in another process:", paste(names(got)[!got], collapse = ",")))
  }
})

test_that("character vectors read right in another process", {
  cases <- string_cases()
  shared <- lapply(cases, share)
  res <- in_child(function(shared, plain) {
    lapply(names(plain), function(nm) {
      x <- shared[[nm]]
      list(identical = identical(x, plain[[nm]]),
           enc = identical(Encoding(x), Encoding(plain[[nm]])),
           bytes = identical(lapply(x, charToRaw), lapply(plain[[nm]], charToRaw)),
           shared = mori::is_shared(x),
           sorted = if (nm != "bytes") identical(sort(x), sort(plain[[nm]])) else TRUE)
    })
  }, list(shared = shared, plain = cases))
  names(res) <- names(cases)
  for (nm in names(cases)) {
    expect_true(res[[nm]]$identical, label = nm)
    expect_true(res[[nm]]$enc, label = paste(nm, "Encoding"))
    expect_true(res[[nm]]$bytes, label = paste(nm, "bytes"))
    expect_true(res[[nm]]$shared, label = paste(nm, "is_shared"))
    expect_true(res[[nm]]$sorted, label = paste(nm, "sort"))
  }
})

test_that("modifying a shared character vector copies on write", {
  x <- share(c("a", NA, "\u00e9"))
  nm <- shared_name(x)
  y <- map_shared(nm)
  x[1] <- "z"
  x[4] <- "new"
  expect_identical(x, c("z", NA, "\u00e9", "new"))
  expect_identical(y, c("a", NA, "\u00e9"))
  expect_identical(map_shared(nm), c("a", NA, "\u00e9"))
  expect_false(is_shared(x))
  expect_identical(unserialize(serialize(x, NULL)), c("z", NA, "\u00e9", "new"))
  x2 <- share(paste0("s", 1:1000))
  nm2 <- shared_name(x2)
  x2[500] <- "changed"
  expect_false(is_shared(x2))
  expect_identical(x2[500], "changed")
  expect_identical(map_shared(nm2)[500], "s500")
  expect_identical(unserialize(serialize(x2, NULL))[499:501], c("s499", "changed", "s501"))
  expect_identical(in_child(function(name) mori::map_shared(name)[500], list(name = nm2)), "s500")
})

test_that("a copy of a character view shares its made strings, and edits stay apart", {
  skip_if_not_installed("rlang")
  x <- share(c("a", "", NA, "b", "c"))
  y <- rlang::duplicate(x, shallow = TRUE)
  expect_true(is_shared(y))
  expect_identical(y, c("a", "", NA, "b", "c"))
  # edit the copy: the original is unchanged
  y[2] <- "edited"
  expect_identical(y, c("a", "edited", NA, "b", "c"))
  expect_identical(x, c("a", "", NA, "b", "c"))
  expect_true(is_shared(x))
  # edit the original in place while a copy shares its cache: the copy is unchanged
  z <- rlang::duplicate(x, shallow = TRUE)
  x[1] <- "changed"
  expect_identical(x, c("changed", "", NA, "b", "c"))
  expect_identical(z, c("a", "", NA, "b", "c"))
  expect_true(is_shared(z))
  expect_identical(map_shared(shared_name(z)), c("a", "", NA, "b", "c"))
  # a writable data pointer on a copy does not reach the other view
  w <- share(letters)
  w2 <- rlang::duplicate(w, shallow = TRUE)
  w2[] <- toupper(w2)
  expect_identical(w2, LETTERS)
  expect_identical(w, letters)
})

test_that("a deep copy is a view until every string is made, then a plain vector", {
  skip_if_not_installed("rlang")
  x <- share(c(first = "a", second = NA, third = "\u00e9"))
  untouched <- rlang::duplicate(x, shallow = FALSE)
  expect_true(is_shared(untouched))
  expect_identical(untouched, c(first = "a", second = NA, third = "\u00e9"))
  # (reading the copy made every string, in the cache it shares with x)
  x <- share(c(first = "a", second = NA, third = "\u00e9"))
  invisible(x[[1]])
  expect_true(is_shared(rlang::duplicate(x, shallow = FALSE)))
  invisible(x[[2]]); invisible(x[[3]])
  plain <- rlang::duplicate(x, shallow = FALSE)
  expect_false(is_shared(plain))
  expect_identical(plain, c(first = "a", second = NA, third = "\u00e9"))
  expect_identical(Encoding(plain), Encoding(c("a", NA, "\u00e9")))
  # a shallow copy (R's before an attribute change) stays shared
  expect_true(is_shared(rlang::duplicate(x, shallow = TRUE)))
  tagged <- structure(x, note = "kept")
  expect_identical(attr(tagged, "note"), "kept")
  expect_true(is_shared(x))
  plain[1] <- "z"
  expect_identical(x[[1]], "a")
})

test_that("match() through R's internal copy of a shared vector stays right", {
  # match() duplicates x before hashing: the copy fills the view's cache
  x <- share(paste0("k", 1:1e4 %% 7L))
  first <- match(x, paste0("k", 0:6))
  expect_identical(first, (1:1e4 %% 7L) + 1L)
  expect_identical(match(x, paste0("k", 0:6)), first)
  expect_identical(x %in% "k3", (1:1e4 %% 7L) == 3L)
  expect_identical(x[[3]], "k3")
  expect_true(is_shared(x))
})

test_that("texts of every length read right with a non-ASCII byte anywhere", {
  # share() copies a text of up to 16 bytes with two overlapping loads and
  # stores (1-3, 4-8, 9-16 bytes) and finds a non-ASCII byte in the same
  # step; longer ones are copied whole. Each length around those bounds,
  # with a UTF-8, a latin1 or a bytes-marked character at the start, in the
  # middle and at the end, among NAs and empty strings; once all distinct
  # (every text stored in turn) and once with repeats (the table of recent
  # strings replayed).
  ascii <- function(n) substr(strrep("abcdefghijklmnopqrstuvwxyz", 4), 1, n)
  marked <- function(s, enc) { Encoding(s) <- enc; s }
  special <- list(utf8 = enc2utf8("\u00e9"), latin1 = marked("\xe9", "latin1"), bytes = marked("\xff", "bytes"))
  texts <- list()
  for (n in c(0:20, 31:33, 63:65)) {
    texts[[length(texts) + 1]] <- ascii(n)
    for (sp in special) {
      if (n == 0) next
      for (at in unique(c(1, (n + 1) %/% 2, n))) {
        # the special character's bytes replace position `at`: its length in
        # bytes stays n when the character is one byte (latin1, bytes), n + 1 for UTF-8
        s <- paste0(substr(ascii(n), 1, at - 1), sp, substr(ascii(n), at + 1, n))
        texts[[length(texts) + 1]] <- marked(s, Encoding(sp))
      }
    }
  }
  distinct <- c(NA, unlist(texts), "", NA)
  expect_false(anyDuplicated(distinct[!is.na(distinct) & nzchar(distinct)]) > 0)
  set.seed(5)
  cases <- list(distinct = distinct, repeated = c(distinct, sample(distinct, 500, replace = TRUE)))
  for (nm in names(cases)) {
    x <- cases[[nm]]
    s <- share(x)
    expect_identical(s[], x, label = nm)
    expect_identical(Encoding(s), Encoding(x), label = paste(nm, "Encoding"))
    expect_identical(lapply(s, charToRaw), lapply(x, charToRaw), label = paste(nm, "bytes"))
    m <- map_shared(shared_name(s))
    expect_identical(lapply(m, charToRaw), lapply(x, charToRaw), label = paste(nm, "mapped bytes"))
    expect_identical(Encoding(m), Encoding(x), label = paste(nm, "mapped Encoding"))
    expect_true(is_shared(s), label = paste(nm, "is_shared"))
  }
})

test_that("very long strings and long vectors of them read right", {
  # share() gathers entries and texts in 64 KB stages before they go into
  # the region: texts that fill one exactly, cross one, or are larger than one
  long <- c(strrep("a", 2^20), strrep("\u00e9", 2^19), NA, strrep("b", 2^20 + 3),
            strrep("c", 2^16), strrep("d", 2^16 - 1), strrep("e", 2^16 + 1), "f")
  x <- c(long, long[c(2, 1)], paste0("t", 1:2e4), paste0(strrep("g", 999), 1:300))
  s <- share(x)
  expect_identical(s[], x)
  expect_identical(Encoding(s), Encoding(x))
  expect_identical(nchar(s, type = "bytes"), nchar(x, type = "bytes"))
  expect_identical(map_shared(shared_name(s))[], x)
})

test_that("string entries and texts are stored as DESIGN.md lays them out", {
  skip_on_cran()
  # entry i: text offset (in the node's text block), length, flags; ASCII
  # texts carry the ASCII flag and no encoding, others their encoding
  entries <- function(b) {
    f <- function(nm) region_field(paste0("string.", nm))
    at <- region_get(b, "node.aux_off", node = 0) + 16 * (seq_len(region_get(b, "node.length", node = 0)) - 1)
    t(vapply(at, function(a) c(off = region_get_uint(b, a + f("text_off")$offset, 8),
                               len = region_get_uint(b, a + f("text_len")$offset, 4),
                               flags = region_get_uint(b, a + f("flags")$offset, 4)), numeric(3)))
  }
  text_block <- function(b) {
    off <- region_get(b, "node.data_off", node = 0)
    b[off + seq_len(region_get(b, "node.data_len", node = 0))]
  }
  cases <- list(
    # all distinct: every text in turn, back to back
    distinct = list(x = c("ab", NA, "\u00e9", "", "cde"), text = c(charToRaw("ab"), charToRaw("\u00e9"), charToRaw("cde")),
                    off = c(0, 2, 2, 4, 4), len = c(2, 0, 2, 0, 3), flags = c(8, 1, 2, 8, 8)),
    # a repeat points at the text stored first
    repeated = list(x = c("ab", "cd", "ab", NA, "cd"), text = charToRaw("abcd"),
                    off = c(0, 2, 0, 4, 2), len = c(2, 2, 2, 0, 2), flags = c(8, 8, 8, 1, 8))
  )
  for (nm in names(cases)) {
    k <- cases[[nm]]
    name <- sprintf("%s_str_%s", rel_tag, nm)
    s <- share(k$x, name = name)
    b <- region_read(file.path("/dev/shm", paste0("mori.", name)))
    e <- entries(b)
    expect_identical(text_block(b), k$text, label = nm)
    expect_equal(unname(e[, "off"]), k$off, label = paste(nm, "offsets"))
    expect_equal(unname(e[, "len"]), k$len, label = paste(nm, "lengths"))
    expect_equal(unname(e[, "flags"]), k$flags, label = paste(nm, "flags"))
    expect_identical(s[], k$x, label = nm)
    unshare(name)
  }
})
