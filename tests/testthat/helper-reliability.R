# Helpers of the reliability and security tests (test-untrusted-regions.R,
# test-malformed-names.R, test-out-of-space.R, test-truncation.R,
# test-fork-safety.R, test-owner-crash.R, test-leaks.R, test-isolation.R,
# test-concurrency.R, test-descriptors.R, test-other-host.R,
# test-prune-liveness.R).

rel_tag <- sprintf("rel%x", Sys.getpid())
rel_fds <- function() length(list.files("/proc/self/fd"))
rel_maps <- function() sum(grepl("memfd:mori", readLines("/proc/self/maps")))
rel_shm <- function(prefix = rel_tag) Sys.glob(file.path("/dev/shm", paste0("mori.", prefix, "*")))
rel_is_root <- function() identical(unname(Sys.info()[["effective_user"]]), "root")
rel_lib <- function() dirname(system.file(package = "mori"))
rel_rscript <- function() file.path(R.home("bin"), "Rscript")
rel_err <- function(expr) tryCatch({
  force(expr)
  ""
}, error = function(e) conditionMessage(e))

# Runs R `code` in an Rscript child (optionally wrapped by a shell `prefix`
# such as "ulimit -n 200;", the shell itself started by the command `wrap`);
# returns list(status, out).
rel_child <- function(code, prefix = "", timeout = 60, env = character(), wrap = character()) {
  script <- tempfile(fileext = ".R")
  writeLines(c(sprintf(".libPaths(c(%s, .libPaths()))", deparse(rel_lib())), "library(mori)", code), script)
  on.exit(unlink(script))
  cmd <- sprintf("%s exec %s --vanilla %s 2>&1", prefix, shQuote(rel_rscript()), shQuote(script))
  out <- suppressWarnings(system2("timeout", c(timeout, wrap, "sh", "-c", shQuote(cmd)), stdout = TRUE, env = env))
  status <- attr(out, "status")
  list(status = if (is.null(status)) 0L else status, out = out)
}

# Runs R `code` as rel_child() does, in a mount namespace of its own whose
# /dev/shm is a fresh tmpfs of `size` ("16m"); returns its output lines.
# Skips the test unless that can be made (root, unshare, mount allowed).
rel_in_private_shm <- function(size, code, timeout = 300) {
  skip_if_not(rel_is_root(), "needs root")
  skip_if(Sys.which("unshare") == "", "unshare not available")
  mount <- sprintf("mount -t tmpfs -o size=%s tmpfs /dev/shm 2>/dev/null || { echo NO_PRIVATE_SHM; exit 0; };", size)
  res <- rel_child(code, prefix = mount, timeout = timeout, wrap = c("unshare", "-m"))
  # unshare itself refused: no output at all
  skip_if(!length(res$out) || identical(res$out, "NO_PRIVATE_SHM"), "cannot mount a private /dev/shm here")
  res$out
}

# Waits until a processx or callr::r_bg process prints a line; returns it.
rel_line <- function(bg, timeout = 20) {
  end <- Sys.time() + timeout
  while (Sys.time() < end) {
    bg$poll_io(200)
    l <- bg$read_output_lines()
    if (length(l)) return(trimws(l[1]))
    if (!bg$is_alive()) break
  }
  stop("child printed nothing: ", paste(bg$read_all_error_lines(), collapse = "\n"))
}
