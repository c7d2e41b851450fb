# Encodings survive a change of locale (issue 17, item 8).
#
# A native-encoded string (Encoding "unknown", e.g. from readLines() in a
# UTF-8 session) means bytes in the writer's locale. R's serialize() records
# the writer's native encoding and unserialize() in another locale converts
# such strings with iconv, to the reader's encoding or else to UTF-8, and
# keeps those it cannot convert as they are. A shared region records it per
# string, and readers do what readRDS() of the same object does in their
# locale: elements, long vectors, names, levels, list names, data frame
# columns and names, attributes and nested lists, for every encoding mark,
# with text some readers cannot convert. UTF-8-, latin1- and bytes-marked
# strings are never converted.

# Locales this machine lacks are built into a private LOCPATH with
# localedef where it can (a latin1 locale is rarely installed).
en_locpath <- local({
  dir <- NULL
  function() {
    if (is.null(dir)) {
      dir <<- tempfile("locales")
      dir.create(dir)
      if (nzchar(Sys.which("localedef"))) {
        for (l in list(c("en_US", "ISO-8859-1"), c("en_US", "UTF-8"))) {
          target <- file.path(dir, paste0(l[1], ".", l[2]))
          suppressWarnings(system2("localedef", c("-i", l[1], "-f", l[2], target), stdout = FALSE, stderr = FALSE))
          # Kept only if it works (localedef may lack the sources).
          charmap <- suppressWarnings(system2("sh", c("-c", shQuote(sprintf(
            "LOCPATH=%s LC_ALL=%s locale charmap", shQuote(dir), basename(target)))), stdout = TRUE, stderr = FALSE))
          if (!identical(charmap, l[2])) unlink(target, recursive = TRUE)
        }
      }
    }
    dir
  }
})

# LOCPATH replaces the system's locale directory: only for locales built here.
en_env <- function(locale) {
  env <- c(LANG = locale, LC_ALL = locale)
  if (locale %in% list.files(en_locpath())) env <- c(env, LOCPATH = en_locpath())
  env
}

en_locales <- function() {
  have <- tryCatch(system2("locale", "-a", stdout = TRUE), error = function(e) character())
  have <- c(have, list.files(en_locpath()))
  norm <- function(x) tolower(gsub("[^A-Za-z0-9]", "", x))
  wanted <- c("C", "POSIX", "C.UTF-8", "en_US.UTF-8", "en_US.ISO-8859-1")
  wanted[norm(wanted) %in% norm(have) | wanted %in% c("C", "POSIX")]
}

en_run <- function(code, locale) {
  script <- tempfile(fileext = ".R")
  on.exit(unlink(script))
  writeLines(c(sprintf(".libPaths(c(%s, .libPaths()))", paste(deparse(.libPaths()), collapse = "")), code), script)
  out <- suppressWarnings(system2(file.path(R.home("bin"), "Rscript"), c("--vanilla", script),
    stdout = TRUE, stderr = TRUE, env = paste0(names(en_env(locale)), "=", en_env(locale))))
  status <- attr(out, "status")
  if (!is.null(status) && status != 0) stop("child in ", locale, " failed:\n", paste(out, collapse = "\n"))
  out
}

# The writer: strings of every mark, as elements, names, levels and list
# names; published under `name` and saved with saveRDS() to `file`. It
# stays alive until `done` exists: a region whose creator exited may be
# pruned by any prune_shared() on the machine.
en_writer <- function(name, file, done) {
  c(
    "library(mori)",
    "f <- tempfile(); writeBin(as.raw(c(0x63, 0x61, 0x66, 0xc3, 0xa9, 0x0a, 0x6e, 0x61, 0xc3, 0xaf, 0x76, 0x65, 0x0a)), f)",
    "if (l10n_info()$`Latin-1`) writeBin(as.raw(c(0x63, 0x61, 0x66, 0xe9, 0x0a, 0x6e, 0x61, 0xef, 0x76, 0x65, 0x0a)), f)",
    "native <- readLines(f)", # 'café', 'naïve' as the locale's bytes, Encoding unknown
    # Native text some readers cannot convert: in UTF-8, characters latin1
    # lacks and bytes that are not UTF-8; in latin1 (read as CP1252 by R),
    # the euro sign and a byte CP1252 leaves undefined.
    "g <- tempfile(); writeBin(as.raw(c(0xe2, 0x82, 0xac, 0x0a, 0xe6, 0xbc, 0xa2, 0xe5, 0xad, 0x97, 0x0a, 0xff, 0xfe, 0x0a)), g)",
    "if (l10n_info()$`Latin-1`) writeBin(as.raw(c(0x80, 0x0a, 0x81, 0x78, 0x0a)), g)",
    "odd <- readLines(g)",
    "utf8 <- c('\\u00fcber', '\\u6f22\\u5b57')",
    "latin1 <- iconv(c('\\u00e9t\\u00e9', '\\u00e0 la'), 'UTF-8', 'latin1')",
    "bytes <- c('\\xff\\xfe', 'a\\xe9'); Encoding(bytes) <- 'bytes'",
    "ascii <- c('plain', 'text')",
    "all <- c(native, utf8, latin1, bytes, ascii, odd)",
    "nob <- c(native, utf8, latin1, ascii)", # factor levels and names must be distinct and translatable
    "obj <- list(",
    "  v = all, big = rep(all, 200), odd = odd, marked = c(utf8, latin1, bytes),",
    "  named = setNames(seq_along(all), all),",
    "  fac = factor(rev(nob), levels = nob),",
    "  lst = setNames(as.list(seq_along(nob)), nob),",
    "  df = data.frame(x = nob, stringsAsFactors = FALSE),",
    "  att = structure(1:3, note = nob),",
    "  nest = list(list(a = nob, b = list(rep(nob, 100))))",
    ")",
    sprintf("saveRDS(obj, '%s')", file),
    sprintf("invisible(share(obj, name = '%s'))", name),
    "cat('WROTE', l10n_info()$`UTF-8`, '\\n')",
    sprintf("while (!file.exists('%s')) Sys.sleep(0.05)", done)
  )
}

# Starts the writer in `locale`; returns the process once it has published.
en_start_writer <- function(code, locale) {
  script <- tempfile(fileext = ".R")
  writeLines(c(sprintf(".libPaths(c(%s, .libPaths()))", paste(deparse(.libPaths()), collapse = "")), code), script)
  p <- processx::process$new(file.path(R.home("bin"), "Rscript"), c("--vanilla", script),
    stdout = "|", stderr = "2>&1", env = c("current", en_env(locale)))
  end <- Sys.time() + 30
  out <- character()
  while (Sys.time() < end && !any(grepl("^WROTE", out))) {
    p$poll_io(200)
    out <- c(out, p$read_output_lines())
    if (!p$is_alive()) break
  }
  list(process = p, out = out)
}

# The reader: for every part, what map_shared() gives against readRDS().
en_reader <- function(name, file) {
  c(
    "library(mori)",
    sprintf("x <- map_shared('%s')", name),
    sprintf("y <- suppressWarnings(readRDS('%s'))", file),
    "strs <- function(o) list(v = o$v, big = o$big, odd = o$odd, marked = o$marked, names = names(o$named),",
    "  levels = levels(o$fac), lstnames = names(o$lst), dfcol = o$df$x, dfnames = names(o$df),",
    "  attr = attr(o$att, 'note'), nested = o$nest[[1]]$a, nestedbig = o$nest[[1]]$b[[1]])",
    "sx <- strs(x); sy <- strs(y)",
    "u8 <- function(s) tryCatch(enc2utf8(s), error = function(e) 'ERROR')",
    "nchars <- function(s) vapply(s, function(e) tryCatch(nchar(e, 'chars'), error = function(err) -1L), 1L)",
    "for (k in names(sx)) {",
    "  a <- sx[[k]]; b <- sy[[k]]",
    "  cat('PART', k,",
    "      identical(Encoding(a), Encoding(b)),",
    "      identical(unname(nchars(a)), unname(nchars(b))),",
    "      identical(a, b),",
    "      identical(lapply(a, charToRaw), lapply(b, charToRaw)),",
    "      identical(u8(a[Encoding(a) != 'bytes']), u8(b[Encoding(b) != 'bytes'])), '\\n')",
    "}",
    "cat('NCHAR', nchars(x$v)[1], nchars(y$v)[1], '\\n')",
    # Marked strings are never converted: the writer's bytes and marks.
    "m <- x$marked",
    "cat('MARKED', identical(Encoding(m), rep(c('UTF-8', 'latin1', 'bytes'), each = 2)),",
    "  identical(unname(vapply(m, function(e) paste(charToRaw(e), collapse = ''), '')),",
    "    c('c3bc626572', 'e6bca2e5ad97', 'e974e9', 'e0206c61', 'fffe', '61e9')), '\\n')",
    "cat('DONE\\n')"
  )
}

test_that("strings of every encoding mark read in every locale as readRDS() reads them", {
  skip_on_cran()
  skip_if_not_installed("processx")
  locales <- en_locales()
  writers <- intersect(c("C.UTF-8", "en_US.UTF-8", "C", "en_US.ISO-8859-1"), locales)
  skip_if(!("C.UTF-8" %in% writers), "no UTF-8 locale")
  cases <- 0
  for (w in writers) {
    name <- sprintf("enc%x_%s", Sys.getpid(), gsub("[^A-Za-z0-9]", "", w))
    file <- tempfile(fileext = ".rds")
    on.exit(try(unshare(name), silent = TRUE), add = TRUE)
    on.exit(unlink(file), add = TRUE)
    done <- tempfile()
    writer <- en_start_writer(en_writer(name, file, done), w)
    on.exit(writer$process$kill(), add = TRUE)
    expect_true(any(grepl("^WROTE", writer$out)), label = paste(writer$out, collapse = "\n"))
    for (r in locales) {
      out <- en_run(en_reader(name, file), r)
      label <- paste("writer", w, "reader", r, ":", paste(out, collapse = "\n"))
      expect_true("DONE" %in% trimws(out), label = label)
      parts <- grep("^PART", out, value = TRUE)
      expect_length(parts, 12)
      for (line in parts) {
        f <- strsplit(trimws(line), " ")[[1]]
        expect_identical(f[3:7], rep("TRUE", 5), label = paste(line, "--", label))
        cases <- cases + 1
      }
      expect_true(any(grepl("^MARKED TRUE TRUE", out)), label = label)
      # The issue's case: 'café' written in a UTF-8 session, read in C;
      # and in a latin1 session, read anywhere.
      if (w %in% c("C.UTF-8", "en_US.ISO-8859-1")) expect_true(any(grepl("^NCHAR 4 4", out)), label = label)
    }
    file.create(done)
    writer$process$wait(10000)
    unshare(name)
    unlink(done)
  }
  expect_gte(cases, 12 * 3 * 3)
})
