# Encodings survive a change of locale (issue 17, item 8).
#
# A native-encoded string (Encoding "unknown", e.g. from readLines() in a
# UTF-8 session) means bytes in the writer's locale. R's serialize() records
# the writer's native encoding and unserialize() in another locale
# translates such strings (in a C locale they come back marked UTF-8). A
# shared region records it per string, and readers do what readRDS() of the
# same object does in their locale: elements, names, levels and list names,
# for every encoding mark.

en_locales <- function() {
  have <- tryCatch(system2("locale", "-a", stdout = TRUE), error = function(e) character())
  norm <- function(x) tolower(gsub("[^A-Za-z0-9]", "", x))
  wanted <- c("C", "POSIX", "C.UTF-8", "en_US.UTF-8")
  wanted[norm(wanted) %in% norm(have) | wanted %in% c("C", "POSIX")]
}

en_run <- function(code, locale) {
  script <- tempfile(fileext = ".R")
  on.exit(unlink(script))
  writeLines(c(sprintf(".libPaths(c(%s, .libPaths()))", paste(deparse(.libPaths()), collapse = "")), code), script)
  out <- suppressWarnings(system2(file.path(R.home("bin"), "Rscript"), c("--vanilla", script),
    stdout = TRUE, stderr = TRUE, env = c(paste0("LANG=", locale), paste0("LC_ALL=", locale))))
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
    "native <- readLines(f)", # 'café', 'naïve' as the locale's bytes, Encoding unknown
    "utf8 <- c('\\u00fcber', '\\u6f22\\u5b57')",
    "latin1 <- iconv(c('\\u00e9t\\u00e9', '\\u00e0 la'), 'UTF-8', 'latin1')",
    "bytes <- c('\\xff\\xfe', 'a\\xe9'); Encoding(bytes) <- 'bytes'",
    "ascii <- c('plain', 'text')",
    "all <- c(native, utf8, latin1, bytes, ascii)",
    "nob <- c(native, utf8, latin1, ascii)", # factor levels and names must be distinct and translatable
    "obj <- list(",
    "  v = all, big = rep(all, 200),",
    "  named = setNames(seq_along(all), all),",
    "  fac = factor(rev(nob), levels = nob),",
    "  lst = setNames(as.list(seq_along(nob)), nob),",
    "  df = data.frame(x = nob, stringsAsFactors = FALSE)",
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
    stdout = "|", stderr = "2>&1", env = c("current", LANG = locale, LC_ALL = locale))
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
    "strs <- function(o) list(v = o$v, big = o$big, names = names(o$named), levels = levels(o$fac),",
    "  lstnames = names(o$lst), dfcol = o$df$x, dfnames = names(o$df))",
    "sx <- strs(x); sy <- strs(y)",
    "nchars <- function(s) vapply(s, function(e) tryCatch(nchar(e, 'chars'), error = function(err) -1L), 1L)",
    "for (k in names(sx)) {",
    "  a <- sx[[k]]; b <- sy[[k]]",
    "  cat('PART', k,",
    "      identical(Encoding(a), Encoding(b)),",
    "      identical(unname(nchars(a)), unname(nchars(b))),",
    "      identical(a, b),",
    "      identical(lapply(a, charToRaw), lapply(b, charToRaw)),",
    "      identical(enc2utf8(a[Encoding(a) != 'bytes']), enc2utf8(b[Encoding(b) != 'bytes'])), '\\n')",
    "}",
    "cat('NCHAR', nchars(x$v)[1], nchars(y$v)[1], '\\n')",
    "cat('DONE\\n')"
  )
}

test_that("strings of every encoding mark read in every locale as readRDS() reads them", {
  skip_on_cran()
  skip_if_not_installed("processx")
  locales <- en_locales()
  writers <- intersect(c("C.UTF-8", "en_US.UTF-8", "C"), locales)
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
      expect_length(parts, 7)
      for (line in parts) {
        f <- strsplit(trimws(line), " ")[[1]]
        expect_identical(f[3:7], rep("TRUE", 5), label = paste(line, "--", label))
        cases <- cases + 1
      }
      # The issue's case: 'café' written in a UTF-8 session, read in C.
      if (w == "C.UTF-8") expect_true(any(grepl("^NCHAR 4 4", out)), label = label)
    }
    file.create(done)
    writer$process$wait(10000)
    unshare(name)
    unlink(done)
  }
  expect_gte(cases, 7 * 3)
})
