# Long shares stop at Ctrl-C (SIGINT) within a fraction of a second and leave
# nothing behind: no mapping, no descriptor, no published file, the name
# free again; R's own interrupt condition is signalled, so
# tryCatch(interrupt = ) sees it. Long shares show progress when asked to
# (default: interactive sessions only).

interrupt_child_code <- c(
  "library(mori)",
  "args <- commandArgs(TRUE); kind <- args[1]; name <- args[2]",
  "x <- switch(kind,",
  "  doubles = as.double(seq_len(1e8)),",
  "  strings = rep_len(paste0('s', seq_len(1e5)), 2e7),",
  "  list = as.list(as.double(seq_len(5e6))))",
  "regions <- function() {",
  "  fds <- suppressWarnings(Sys.readlink(list.files('/proc/self/fd', full.names = TRUE)))",
  "  maps <- readLines('/proc/self/maps')",
  "  sum(grepl('memfd:mori|/dev/shm/mori', fds)) + sum(grepl('memfd:mori|/dev/shm/mori', maps))",
  "}",
  "cat('ready', regions(), '\\n')",
  "res <- tryCatch({",
  "  s <- if (name == '-') share(x) else share(x, name = name)",
  "  'finished'",
  "}, interrupt = function(i) 'interrupted', error = function(e) paste('error', conditionMessage(e)))",
  "stopped <- as.numeric(Sys.time())",
  "cat('result', res, '\\n')",
  "cat('stopped', format(stopped, nsmall = 3), '\\n')",
  "invisible(gc())",
  "cat('left', regions(), '\\n')",
  "if (name != '-') {",
  "  cat('file', file.exists(file.path('/dev/shm', paste0('mori.', name))), '\\n')",
  "  again <- tryCatch(identical(share(1:3, name = name), 1:3), error = function(e) conditionMessage(e))",
  "  cat('name free', again, '\\n')",
  "  unshare(name)",
  "}"
)

# Starts the child, sends SIGINT `after` seconds after it is ready, and
# returns its report with the time from the signal to the stop.
interrupt_share <- function(kind, name = "-", after = 0.5) {
  script <- tempfile(fileext = ".R")
  on.exit(unlink(script))
  writeLines(interrupt_child_code, script)
  p <- processx::process$new(
    file.path(R.home("bin"), "Rscript"), c("--vanilla", script, kind, name),
    stdout = "|", stderr = "2>&1",
    env = c("current", R_LIBS = paste(.libPaths(), collapse = ":"))
  )
  on.exit(p$kill(), add = TRUE)
  out <- character()
  deadline <- Sys.time() + 120
  while (!any(grepl("^ready", out)) && p$is_alive() && Sys.time() < deadline) {
    p$poll_io(1000)
    out <- c(out, p$read_output_lines())
  }
  Sys.sleep(after)
  sent <- as.numeric(Sys.time())
  tools::pskill(p$get_pid(), tools::SIGINT)
  p$wait(60000)
  out <- c(out, p$read_all_output_lines())
  field <- function(key) {
    line <- grep(paste0("^", key, " "), out, value = TRUE)
    if (length(line) != 1) stop("child output lacks '", key, "':\n", paste(out, collapse = "\n"))
    trimws(sub(paste0("^", key, " "), "", line))
  }
  message(sprintf("  %s %s: stopped %.2f s after SIGINT", kind, name, as.numeric(field("stopped")) - sent))
  report <- list(ready = field("ready"), result = field("result"), left = field("left"),
                 seconds = as.numeric(field("stopped")) - sent)
  if (name != "-") {
    report$file <- field("file")
    report$name_free <- field("name free")
  }
  report
}

test_that("an interrupted share stops at once and leaves nothing behind", {
  skip_if_not_installed("processx")
  skip_if(mem_available_gb() < 4, "needs 4 GB of free memory")
  # Without interrupt checks, the list and the strings take seconds here
  # after the signal arrives; with them, a fraction of one.
  published <- function(kind) paste0("interrupted-", kind, "-", Sys.getpid())
  cases <- list(c("list", "-"), c("list", published("list")), c("strings", "-"), c("doubles", published("doubles")))
  for (case in cases) {
    kind <- case[1]
    name <- case[2]
    r <- interrupt_share(kind, name)
    label <- paste(kind, name)
    expect_identical(r$ready, "0", label = label)
    expect_identical(r$result, "interrupted", label = label)
    expect_lt(r$seconds, 2, label = label)
    expect_identical(r$left, "0", label = label)
    if (name != "-") {
      expect_identical(r$file, "FALSE", label = label)
      expect_identical(r$name_free, "TRUE", label = label)
      expect_false(file.exists(file.path("/dev/shm", paste0("mori.", name))), label = label)
    }
  }
})

progress_child <- function(setup) {
  rscript_child(c(
    "library(mori)",
    setup,
    "x <- rep_len(paste0('s', seq_len(1e5)), 1e7)",
    "s <- share(x)",
    "cat('same', identical(s, x), '\\n')"
  ))
}

test_that("long shares show progress only when asked to", {
  on <- progress_child("options(mori.progress = TRUE, mori.progress_delay = 0)")
  expect_true(any(grepl("same TRUE", on)))
  expect_true(any(grepl("Sharing", on)))
  # Without cli: a message line.
  plain <- progress_child(c(
    "options(mori.progress = TRUE, mori.progress_delay = 0)",
    "f <- mori:::progress; body(f)[[2]][[2]] <- FALSE; assignInNamespace('progress', f, 'mori')"
  ))
  expect_true(any(grepl("Sharing: +[0-9]+% of [0-9]+ MB", plain)))
  # Switched off (as by default when not interactive, as here): silent.
  out <- progress_child("options(mori.progress = FALSE, mori.progress_delay = 0)")
  expect_identical(out, "same TRUE ")
  # A failing progress display never stops the share.
  broken <- progress_child(c(
    "options(mori.progress = TRUE, mori.progress_delay = 0)",
    "assignInNamespace('progress', function(...) stop('no display'), 'mori')"
  ))
  expect_true(any(grepl("same TRUE", broken)))
})
