# Fuzzing engine for mori's readers, shared by tools/reliability/fuzz-r.R and
# tests/testthat/test-untrusted-regions.R. Plain base R; needs mori loaded.
#
# A case takes the bytes of a real published region (a "seed"), corrupts
# them (bit flips, random bytes, random u32/u64 values in node fields, string
# index entries and child tables, truncation, garbage tails, swapped or copied
# node records, header fields), usually rewrites the header name and the
# FNV-1a checksum so that the corruption reaches node validation and the
# decoders, writes the result as /dev/shm/mori.<name>, then reads it through
# map_shared(name) (sometimes with an element path, node index or slice
# suffix) or through unserialize() of a reference naming it, and touches
# everything. Each operation runs in its own tryCatch: a case ends as
# "valid" (no error) or "error" (clean R errors only). A crash kills the
# process, which the caller (a callr child) detects.

fz_seed_objects <- function() {
  set.seed(7)
  list(
    dbl = rnorm(100),
    int_named = setNames(1:20, paste0("n", 1:20)),
    lgl = c(TRUE, NA, FALSE, TRUE),
    raw = as.raw(0:255),
    cplx = complex(real = 1:5, imaginary = c(NA, 1, 2, 3, 4)),
    int_sorted = 1:1000,
    chr = c("a", NA, "h\u00e9llo", "\u65e5\u672c", "", strrep("z", 300)),
    chr_latin1 = iconv(c("caf\u00e9", "na\u00efve"), "UTF-8", "latin1"),
    factor = factor(c("lo", "hi", NA, "lo")),
    date = as.Date("2024-02-29") + 0:9,
    matrix = matrix(as.double(1:12), 3, 4, dimnames = list(letters[1:3], LETTERS[1:4])),
    array = array(1:24, c(2, 3, 4)),
    list = list(a = 1:3, b = "x", c = list(d = 2.5, e = NULL)),
    nested = list(list(list(list(1L, "deep"), 2), 3), 4),
    df = head(mtcars, 10),
    iris = iris[c(1:5, 51:55, 101:105), ],
    df_chr = data.frame(id = 1:6, s = c("a", "b", NA, "d", "e", "f"), stringsAsFactors = FALSE),
    objects = list(f = function(x) x + 1, fo = y ~ x, e = globalenv(), n = NULL, s = "k"),
    empty = list(integer(0), character(0), list(), double(0)),
    attrs = structure(list(1, "a"), meta = list(k = 1:3, v = letters[1:3]), class = "myclass")
  )
}

# Bytes of each seed as published regions (created and removed again).
fz_seeds <- function() {
  objs <- fz_seed_objects()
  tag <- sprintf("relfzseed%x", Sys.getpid())
  lapply(seq_along(objs), function(k) {
    nm <- paste0(tag, "_", k)
    s <- share(objs[[k]], name = nm)
    path <- file.path("/dev/shm", paste0("mori.", nm))
    b <- readBin(path, "raw", file.size(path))
    unshare(nm)
    rm(s)
    list(kind = names(objs)[k], bytes = b)
  })
}

# --- the region's format -------------------------------------------------
# Field positions, the FNV-1a checksum and the name field come from the test
# suite's byte helpers (tests/testthat/helper-region-bytes.R), which read the
# package's own field table: no offset is written here.
local({
  here <- NULL
  for (fr in rev(sys.frames())) if (!is.null(fr$ofile)) { here <- dirname(fr$ofile); break }
  helper <- file.path(if (is.null(here)) "tools/reliability" else here, "..", "..", "tests", "testthat",
                      "helper-region-bytes.R")
  if (!exists("region_fields", mode = "function")) sys.source(helper, envir = parent.env(environment()))
})
FZ_FIELDS <- region_fields()
FZ_HEADER <- region_header_size(FZ_FIELDS)
FZ_NODE <- region_node_size(FZ_FIELDS)
fz_off <- function(name) region_field(name, FZ_FIELDS)$offset

# Little-endian values as doubles; u64 as lo/hi halves. Reads past the end
# give 0; writes past the end are dropped.
fz_get_u32 <- function(b, off) region_get_uint(b, off, 4)
fz_put_u32 <- function(b, off, v) region_put_uint(b, off, 4, c(v %% 4294967296, 0))
fz_get_u64 <- function(b, off) fz_get_u32(b, off) + 4294967296 * fz_get_u32(b, off + 4)
fz_put_u64 <- function(b, off, lo, hi = 0) fz_put_u32(fz_put_u32(b, off, lo), off + 4, hi)

fz_fix_checksum <- function(b) region_reseal(b, FZ_FIELDS)
fz_set_name <- function(b, name) region_set_name(b, name, FZ_FIELDS)

# Interesting values for a u32 / u64 field whose current value is `orig`.
fz_value <- function(orig, len) {
  v <- sample(list(0, 1, 2, 7, 8, 63, 64, 127, 128, 255, 256, 4095, 4096, 65535,
                   2^31 - 1, 2^31, 2^32 - 1, len - 1, len, len + 1, len - 64,
                   orig + 1, orig - 1, orig + 8, orig - 8, orig * 2, orig + 64,
                   c(0, 1), c(0, 2^31), c(2^32 - 1, 2^32 - 1), c(2^32 - 1, 2^31 - 1),
                   floor(runif(1, 0, 2^32)), c(floor(runif(1, 0, 2^32)), floor(runif(1, 0, 2^32)))), 1)[[1]]
  if (length(v) == 1) c(max(v, 0) %% 4294967296, 0) else v
}

# Node fields of 4 and 8 bytes, as c(offset, size): all but kind, flags and the reserved bytes.
FZ_NODE_FIELDS <- local({
  f <- FZ_FIELDS[startsWith(FZ_FIELDS$name, "node.") & FZ_FIELDS$size >= 4, ]
  lapply(seq_len(nrow(f)), function(k) c(f$offset[k], f$size[k]))
})
FZ_KINDS <- c(0, 10, 13, 14, 15, 16, 19, 24, 255)

fz_mutate <- function(b) {
  n <- length(b)
  nc <- min(fz_get_u32(b, fz_off("header.node_count")), 4096)
  fix <- TRUE
  ops <- sample(1:12, sample(1:3, 1, prob = c(.6, .3, .1)), replace = TRUE)
  for (op in ops) {
    n <- length(b)
    if (n < FZ_HEADER + 1) break
    nc <- max(1, min(nc, (n - FZ_HEADER) %/% FZ_NODE))
    table_end <- FZ_HEADER + FZ_NODE * nc
    node <- sample.int(nc, 1) - 1
    at <- FZ_HEADER + FZ_NODE * node
    switch(op,
      { # 1: bit flips, mostly in the header and node table
        k <- sample(1:8, 1)
        pos <- if (runif(1) < .7) sample.int(min(table_end, n), k, TRUE) else sample.int(n, k, TRUE)
        for (p in pos) b[p] <- xor(b[p], as.raw(bitwShiftL(1L, sample(0:7, 1))))
      },
      { # 2: random bytes anywhere
        pos <- sample.int(n, sample(1:16, 1), TRUE)
        b[pos] <- as.raw(sample.int(256, length(pos), TRUE) - 1)
      },
      { # 3, 4, 5: a node field gets an interesting u32/u64
        f <- FZ_NODE_FIELDS[[sample.int(length(FZ_NODE_FIELDS), 1)]]
        v <- fz_value(if (f[2] == 4) fz_get_u32(b, at + f[1]) else fz_get_u64(b, at + f[1]), n)
        b <- if (f[2] == 4) fz_put_u32(b, at + f[1], v[1]) else fz_put_u64(b, at + f[1], v[1], v[2])
      },
      {
        f <- FZ_NODE_FIELDS[[sample.int(length(FZ_NODE_FIELDS), 1)]]
        v <- fz_value(0, n)
        b <- if (f[2] == 4) fz_put_u32(b, at + f[1], v[1]) else fz_put_u64(b, at + f[1], v[1], v[2])
      },
      { # kind and flags
        b[at + fz_off("node.kind") + 1] <- as.raw(if (runif(1) < .8) sample(FZ_KINDS, 1) else sample.int(256, 1) - 1)
        if (runif(1) < .5) b[at + fz_off("node.flags") + 1] <- as.raw(sample.int(256, 1) - 1)
      },
      { # 6: u32/u64 in the data area (string index entries, child tables, dims, summaries)
        if (n > table_end + 8) {
          off <- table_end + 8 * (sample.int((n - table_end) %/% 8, 1) - 1)
          v <- fz_value(fz_get_u32(b, off), n)
          b <- if (runif(1) < .5) fz_put_u32(b, off + 4 * (runif(1) < .5), v[1]) else fz_put_u64(b, off, v[1], v[2])
        }
      },
      { # 7: truncation; the header size is usually made to agree
        b <- b[seq_len(sample(0:(n - 1), 1))]
        if (runif(1) < .3) fix <- FALSE
      },
      { # 8: garbage tail
        b <- c(b, as.raw(sample.int(256, sample(c(1, 7, 64, 4096), 1), TRUE) - 1))
      },
      { # 9: header fields: node count, version, header size, total size
        total <- fz_off("header.total_size")
        f <- sample(c(fz_off("header.version"), fz_off("header.header_size"), total, fz_off("header.node_count")), 1)
        v <- fz_value(fz_get_u32(b, f), n)
        b <- if (f == total) fz_put_u64(b, f, v[1], v[2]) else fz_put_u32(b, f, v[1])
        if (f == total) fix <- FALSE
      },
      { # 10: swap two node records
        other <- FZ_HEADER + FZ_NODE * (sample.int(nc, 1) - 1)
        tmp <- b[at + seq_len(FZ_NODE)]
        b[at + seq_len(FZ_NODE)] <- b[other + seq_len(FZ_NODE)]
        b[other + seq_len(FZ_NODE)] <- tmp
      },
      { # 11: copy a node record over another
        other <- FZ_HEADER + FZ_NODE * (sample.int(nc, 1) - 1)
        b[at + seq_len(FZ_NODE)] <- b[other + seq_len(FZ_NODE)]
      },
      { # 12: string entry flags / list children: a u32 inside an aux block
        aux <- fz_get_u64(b, at + fz_off("node.aux_off"))
        len <- fz_get_u64(b, at + fz_off("node.aux_len"))
        if (len >= 4 && aux + len <= n) {
          off <- aux + 4 * (sample.int(len %/% 4, 1) - 1)
          b <- fz_put_u32(b, off, fz_value(fz_get_u32(b, off), n)[1])
        }
      }
    )
  }
  total <- fz_off("header.total_size")
  if (fix && length(b) >= total + 8) b <- fz_put_u64(b, total, length(b))
  list(bytes = b, fix = fix)
}

# A reference (serialized view) naming region `name`: the serialization of a
# view of a template region whose name has the same length, with the name
# bytes replaced.
fz_ref_templates <- function(name_len) {
  tname <- paste0("t", strrep("q", name_len - 1))
  objs <- list(1.5, 1L, TRUE, as.raw(1), 1i, "s")
  out <- lapply(objs, function(o) {
    v <- share(o, name = tname)
    r <- serialize(v, NULL)
    # The reference carries its region's nonce (the header's nonce field): kept
    # so that fz_ref_for() can give it the mutated region's nonce instead.
    nonce <- readBin(file.path("/dev/shm", paste0("mori.", tname)), "raw", FZ_HEADER_NONCE[2])[FZ_HEADER_NONCE[1] + seq_len(8)]
    unshare(tname)
    list(bytes = r, nonce = nonce)
  })
  list(tname = charToRaw(tname), refs = out)
}

# Offset and end of the header's nonce field, from the field table.
FZ_HEADER_NONCE <- with(region_field("header.nonce", FZ_FIELDS), c(offset, offset + size))

# Replaces the first occurrence of `from` in `r` by `to` (same length).
fz_replace_raw <- function(r, from, to) {
  k <- length(from)
  for (s in which(r == from[1])) {
    if (s + k - 1 <= length(r) && all(r[s:(s + k - 1)] == from)) {
      r[s:(s + k - 1)] <- to
      return(r)
    }
  }
  stop("template bytes not found")
}

fz_ref_for <- function(templates, name, region, i = NULL) {
  t <- templates$refs[[if (is.null(i)) sample.int(length(templates$refs), 1) else i]]
  r <- fz_replace_raw(t$bytes, templates$tname, charToRaw(name))
  # With the template's nonce the reference would never open the mutated
  # region ("not found"), and the decoder would go untested.
  if (length(region) >= FZ_HEADER_NONCE[2]) r <- fz_replace_raw(r, t$nonce, region[FZ_HEADER_NONCE[1] + seq_len(8)])
  r
}

# Touches everything in y; returns the number of operations that errored and
# the error messages.
fz_touch <- function(y, depth = 0, errs = character()) {
  try_op <- function(expr) {
    tryCatch({
      force(expr)
      NULL
    }, error = function(e) conditionMessage(e), warning = function(w) NULL)
  }
  ops <- list(
    function() identical(y, y),
    function() capture.output(str(y)),
    function() unserialize(serialize(y, NULL)),
    function() attributes(y),
    function() length(y),
    function() y[],
    function() if (length(y)) y[[1]],
    function() if (length(y) > 1) rev(y),
    function() head(y, 3),
    function() if (!is.null(dim(y)) && length(dim(y)) == 2) {
      y[nrow(y), ncol(y)]
      t(y)
    },
    function() if (is.atomic(y)) {
      anyNA(y)
      if (is.numeric(y)) c(sum(y), range(y), mean(y), is.unsorted(y))
      if (is.character(y)) c(nchar(y, "bytes", allowNA = TRUE), enc2utf8(y), toupper(y))
      if (is.numeric(y) || is.character(y)) sort(y)
      as.character(y)
      format(y)
    },
    function() if (is.factor(y)) levels(y)[y],
    function() if (is.data.frame(y)) capture.output(print(head(y))),
    function() if (is.list(y) && !is.data.frame(y)) lapply(y, function(e) e[])
  )
  for (op in ops) {
    e <- try_op(op())
    if (!is.null(e)) errs <- c(errs, e)
  }
  if (is.list(y) && depth < 6) {
    for (k in seq_along(y)) {
      e <- tryCatch(y[[k]], error = function(e) e)
      if (inherits(e, "error")) {
        errs <- c(errs, conditionMessage(e))
      } else {
        errs <- fz_touch(e, depth + 1, errs)
      }
    }
  }
  errs
}

# Where the state of the serialized reference `r` starts: its tag byte,
# just before the host id (the first 4 bytes of the boot id); NA if absent.
fz_ref_start <- function(r) {
  boot <- gsub("-", "", readLines("/proc/sys/kernel/random/boot_id"))
  host <- as.raw(strtoi(substring(boot, seq(1, 7, 2), seq(2, 8, 2)), 16L))
  at <- which(vapply(seq_len(length(r) - 3), function(i) all(r[i:(i + 3)] == host), TRUE))
  if (length(at) >= 1 && at[1] > 1) at[1] - 1L else NA_integer_
}

# Runs case i (deterministic in i). Returns list(status, messages, mode).
fz_case <- function(i, seeds, templates, live_ref) {
  set.seed(1e6 + i)
  name <- sprintf("fz%08x_%06x", Sys.getpid() %% 2^31, i)
  path <- file.path("/dev/shm", paste0("mori.", name))
  mode <- sample(c("map", "suffix", "ref", "refstr"), 1, prob = c(.55, .15, .22, .08))
  if (mode == "refstr") {
    # Corrupt bytes of a real reference to a live ordinary region: its
    # state (src/rust/core/src/reference.rs) from the tag byte on, the
    # host id, namespace, nonce and the name's varints.
    r <- live_ref
    st <- fz_ref_start(r)
    pos <- st + sample.int(min(30, length(r) - st), sample(1:3, 1)) - 1
    r[pos] <- as.raw(sample.int(256, length(pos), TRUE) - 1L)
    y <- tryCatch(unserialize(r), error = function(e) e)
  } else {
    seed <- seeds[[sample.int(length(seeds), 1)]]
    m <- fz_mutate(seed$bytes)
    b <- fz_set_name(m$bytes, name)
    if (m$fix && runif(1) < .85) b <- fz_fix_checksum(b)
    writeBin(b, path)
    # planted read-only, as a sealed region is (a POSIX shm reader refuses
    # an object that is not 0400 before it reads a byte)
    Sys.chmod(path, "400")
    target <- name
    if (mode == "suffix") {
      target <- paste0(name, sample(c("[1]", "[2]", "[1,1]", "[2,1]", "[3,2]", "#1", "#2", "#3", "#5",
                                      "@1:2", "@2:3", "[1]@1:1", "#4294967295", "[4294967296]"), 1))
    }
    y <- if (mode == "ref") {
      tryCatch(unserialize(fz_ref_for(templates, name, b)), error = function(e) e)
    } else {
      tryCatch(map_shared(target), error = function(e) e)
    }
  }
  # The file stays until everything is touched: serialize() of a view of a
  # published region is a reference to its name.
  on.exit(if (mode != "refstr") unlink(path))
  if (inherits(y, "error")) return(list(status = "error", messages = conditionMessage(y), mode = mode))
  errs <- fz_touch(y)
  list(status = if (length(errs)) "error" else "valid", messages = errs, mode = mode)
}

# Runs cases from..to in this process, logging "start <i>" before each case
# and "end <i> <status> <mode>" plus "msg <text>" lines after it to `log`, so
# that a parent can tally results and tell which case killed the process.
fz_run <- function(from, to, log) {
  # In a callr child, mori serializes the child's own regions as values;
  # the fuzzer needs references.
  options(mori.materialize_own = FALSE)
  seeds <- fz_seeds()
  templates <- fz_ref_templates(nchar(sprintf("fz%08x_%06x", 1, 1)))
  # An element large enough to travel as a reference on R < 4.3 too (small
  # parts of a shared list travel as their values there).
  live <- share(list(a = as.double(1:1e4), b = letters))
  live_ref <- serialize(live$a, NULL)
  stopifnot(!is.na(fz_ref_start(live_ref)))
  con <- file(log, open = "a")
  on.exit(close(con))
  for (i in from:to) {
    writeLines(paste("start", i), con)
    flush(con)
    r <- fz_case(i, seeds, templates, live_ref)
    # Messages, stripped of case-specific names and numbers, for the summary.
    norm <- gsub("fz[0-9a-f]{8}_[0-9a-f]{6}", "<name>", r$messages)
    norm <- substr(gsub("[0-9]+", "N", gsub("[\r\n]+", " ", norm)), 1, 100)
    internal <- any(grepl("internal error in mori", r$messages))
    writeLines(c(paste("end", i, r$status, r$mode, if (internal) "internal" else ""),
                 if (length(norm)) paste("msg", unique(norm))), con)
    if (i %% 250 == 0) gc(verbose = FALSE)
  }
  writeLines("done", con)
  invisible(TRUE)
}

# Runs cases 1..n in callr children, restarting after a crash (the case
# after the crashing one starts a new child). Returns a list: cases, valid,
# errors, crashes (case, error, files saved under crash_dir), internal (cases
# whose errors were mori panics), by_mode, messages (table), seconds.
fz_drive <- function(n, lib, lib_file, crash_dir = tempdir(), timeout = 3600) {
  log <- tempfile("fuzz-log")
  file.create(log)
  unlink(Sys.glob("/dev/shm/mori.fz*")) # leftovers of an interrupted run
  from <- 1
  crashes <- list()
  t0 <- proc.time()[["elapsed"]]
  while (from <= n) {
    res <- tryCatch(
      callr::r(function(from, to, log, lib, lib_file) {
        library(mori, lib.loc = lib)
        source(lib_file)
        fz_run(from, to, log)
      }, args = list(from = from, to = n, log = log, lib = lib, lib_file = lib_file),
      libpath = c(lib, .libPaths()), timeout = timeout),
      error = function(e) e)
    lines <- readLines(log)
    # A child can also end early without callr seeing an error (R's "C stack
    # overflow" handler halts it): only a log ending in "done" is a full run.
    if (!inherits(res, "error") && length(lines) && lines[length(lines)] == "done") break
    if (!inherits(res, "error")) res <- simpleError("the child stopped before the end (no 'done')")
    started <- grep("^start ", lines, value = TRUE)
    last <- if (length(started)) as.integer(sub("start ", "", started[length(started)])) else from
    saved <- character()
    for (f in Sys.glob("/dev/shm/mori.fz*")) {
      dest <- file.path(crash_dir, basename(f))
      file.copy(f, dest, overwrite = TRUE)
      unlink(f)
      saved <- c(saved, dest)
    }
    crashes[[length(crashes) + 1]] <- list(case = last, error = conditionMessage(res), saved = saved)
    from <- last + 1
  }
  lines <- readLines(log)
  ends <- strsplit(grep("^end ", lines, value = TRUE), " ")
  status <- vapply(ends, `[`, "", 3)
  mode <- vapply(ends, `[`, "", 4)
  internal <- as.integer(vapply(Filter(function(e) length(e) >= 5 && e[5] == "internal", ends), `[`, "", 2))
  unlink(log)
  unlink(Sys.glob("/dev/shm/mori.fz*"))
  list(cases = length(ends) + length(crashes), valid = sum(status == "valid"), errors = sum(status == "error"),
       crashes = crashes, internal = internal, by_mode = table(mode, status),
       messages = sort(table(sub("^msg ", "", grep("^msg ", lines, value = TRUE))), decreasing = TRUE),
       seconds = proc.time()[["elapsed"]] - t0)
}
