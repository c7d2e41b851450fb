# Helpers shared by the test files.

# The tests start callr children (processx) and fork mclapply children
# (parallel) in one process. processx's SIGCHLD handler does not pass on
# signals for children that are not its own, so parallel never learns that
# its forked children ended and, at exit, waits 10 s before giving up with
# "Error while shutting down parallel: unable to terminate some child
# processes" (r-lib/processx#236). This setting makes processx call the
# handler it replaced.
Sys.setenv(PROCESSX_NOTIFY_OLD_SIGCHLD = "true")

# What this system can do. Tests skip by capability, not by the name of
# the OS, so that on macOS, Windows or with the POSIX shm backend forced on
# Linux (tools/ports.sh) a test that needs /proc, memfd regions, SIGBUS,
# cgroups or other users skips instead of failing.

# The OS backend regions live in: "memfd" (Linux's default), "posix-shm"
# (macOS; forced on Linux by the core's build switch: the package then
# says so, else tools/ports.sh's MORI_OS_BACKEND) or "windows".
region_backend <- function() {
  said <- tryCatch(get("os_backend", asNamespace("mori"))(), error = function(e) NULL)
  if (is.character(said) && length(said) == 1) return(said)
  if (.Platform$OS.type == "windows") return("windows")
  if (Sys.info()[["sysname"]] != "Linux") return("posix-shm")
  forced <- Sys.getenv("MORI_OS_BACKEND")
  if (nzchar(forced)) forced else "memfd"
}

# /proc with this process's descriptors and mappings (Linux).
has_proc <- function() dir.exists("/proc/self/fd") && file.exists("/proc/self/maps")
skip_without_proc <- function() skip_if_not(has_proc(), "no /proc on this system")

# Regions are memfd files, seen in /proc as "memfd:mori_..." links and maps.
skip_without_memfd <- function() {
  skip_without_proc()
  skip_if_not(region_backend() == "memfd", paste("regions are not memfd files with the", region_backend(), "backend"))
}

# Published regions are /dev/shm files another process can truncate under a
# reader (Linux), which the SIGBUS guard turns into R errors. macOS shm
# objects and Windows sections cannot shrink.
has_sigbus <- function() {
  Sys.info()[["sysname"]] == "Linux" && dir.exists("/dev/shm") && region_backend() == "memfd"
}
skip_without_sigbus <- function() skip_if_not(has_sigbus(), "published regions cannot be truncated here (no SIGBUS)")

# fork() (parallel::mclapply, mcparallel): every Unix, not Windows.
has_fork <- function() .Platform$OS.type == "unix"
skip_without_fork <- function() skip_if_not(has_fork(), "no fork() on this system")

# Regions held as file descriptors under the process's descriptor limit
# (ulimit -n): Unix; Windows sections are handles without such a limit.
skip_without_descriptors <- function() {
  skip_if_not(.Platform$OS.type == "unix", "regions are not file descriptors on this system")
}

# Linux control groups (v2 or v1), which cap the memory mori may take.
has_cgroups <- function() file.exists("/proc/self/cgroup") && dir.exists("/sys/fs/cgroup")
skip_without_cgroups <- function() skip_if_not(has_cgroups(), "no control groups on this system")

# Running a child as another user: root, and setpriv to drop to another uid.
can_run_as_other_user <- function() {
  .Platform$OS.type == "unix" && identical(unname(Sys.info()[["effective_user"]]), "root") &&
    nzchar(Sys.which("setpriv"))
}
skip_without_other_users <- function() skip_if_not(can_run_as_other_user(), "cannot run a child as another user here")

# The memfd file name behind a region name: "/mori_<pid>_<serial>_<fd>[path]"
# -> "mori_<pid>_<serial>"; a packed region's "/mori_<pid>_<serial>_<fd>+<offset>"
# -> its pack's, "mori_<pid>_<serial>.pack".
memfd_file <- function(name) {
  base <- sub("[\\[#@].*$", "", name)
  if (grepl("+", base, fixed = TRUE)) {
    return(sub("^/(mori_[0-9a-f]+_[0-9a-f]+)_[0-9a-f]+[+][0-9a-f]+$", "\\1.pack", base))
  }
  sub("^/(mori_[0-9a-f]+_[0-9a-f]+)_[0-9a-f]+$", "\\1", base)
}

memfd_pattern <- function(name) {
  paste0("memfd:", memfd_file(name), "( |$)")
}

# Does process `pid` map the region called `name`?
maps_region <- function(name, pid = "self") {
  skip_without_memfd()
  maps <- tryCatch(suppressWarnings(readLines(file.path("/proc", pid, "maps"))), error = function(e) character())
  any(grepl(memfd_pattern(name), maps))
}

# Does process `pid` hold an open descriptor on the region called `name`?
fds_region <- function(name, pid = "self") {
  skip_without_memfd()
  fds <- list.files(file.path("/proc", pid, "fd"), full.names = TRUE)
  links <- suppressWarnings(Sys.readlink(fds))
  any(grepl(memfd_pattern(name), links))
}

# Does any process on the machine map or hold the region called `name`?
region_anywhere <- function(name) {
  skip_without_memfd()
  pids <- list.files("/proc", pattern = "^[0-9]+$")
  any(vapply(pids, function(p) maps_region(name, p) || fds_region(name, p), logical(1)))
}

full_gc <- function() {
  for (i in 1:3) gc(verbose = FALSE, full = TRUE)
  invisible()
}

# The host id serialized references carry: the first 4 bytes of the boot id,
# in binary (src/rust/core/src/reference.rs).
reference_host <- function() {
  boot <- gsub("-", "", readLines("/proc/sys/kernel/random/boot_id"))
  as.raw(strtoi(substring(boot, seq(1, 7, 2), seq(2, 8, 2)), 16L))
}

# Every offset at which the host id stands in serialized bytes `s`.
reference_host_at <- function(s, host = reference_host()) {
  k <- length(host)
  which(vapply(seq_len(length(s) - k + 1), function(i) all(s[i:(i + k - 1)] == host), TRUE))
}

# Starts `fun(out)` in a background R process that finds the package under
# test and waits (up to `timeout` s, or until the process ends) for the file
# `out` it writes (under another name, then renamed, so it is whole once it
# exists). Returns the callr process, still running: the caller kills it.
bg_writer <- function(fun, out, timeout = 60) {
  skip_if_not_installed("callr")
  bg <- callr::r_bg(fun, list(out = out), libpath = .libPaths())
  end <- Sys.time() + timeout
  while (!file.exists(out) && Sys.time() < end && bg$is_alive()) Sys.sleep(0.1)
  bg
}

# Runs `fun` in a fresh R process that finds the package under test.
in_child <- function(fun, args = list()) {
  skip_if_not_installed("callr")
  callr::r(fun, args = args, libpath = .libPaths())
}

# The error message `map_shared(name)` gives in a fresh process ("" if none).
child_map_error <- function(name) {
  in_child(function(name) {
    tryCatch({
      mori::map_shared(name)
      ""
    }, error = function(e) conditionMessage(e))
  }, list(name = name))
}

# The error message `map_shared(name)` gives here ("" if none).
map_error <- function(name) {
  tryCatch({
    map_shared(name)
    ""
  }, error = function(e) conditionMessage(e))
}

# Runs an Rscript child on `code` with the package's library visible;
# returns its standard output lines.
rscript_child <- function(code, args = character()) {
  rscript <- file.path(R.home("bin"), "Rscript")
  script <- tempfile(fileext = ".R")
  on.exit(unlink(script))
  writeLines(code, script)
  out <- suppressWarnings(system2(
    rscript, c("--vanilla", shQuote(script), shQuote(args)),
    stdout = TRUE, stderr = TRUE,
    env = paste0("R_LIBS=", shQuote(paste(.libPaths(), collapse = ":")))
  ))
  status <- attr(out, "status")
  if (!is.null(status) && status != 0) {
    stop("Rscript child failed:\n", paste(out, collapse = "\n"))
  }
  out
}

# Enough free memory for a test that needs `gb` gigabytes?
# (0 where /proc/meminfo is missing: tests needing memory then skip.)
mem_available_gb <- function() {
  info <- tryCatch(readLines("/proc/meminfo"), error = function(e) character())
  line <- grep("^MemAvailable:", info, value = TRUE)
  if (!length(line)) return(0)
  as.numeric(gsub("[^0-9]", "", line)) / 1024^2
}

# A set of atomic vectors of every supported type, with assorted attributes.
atomic_cases <- function() {
  set.seed(42)
  n <- 5e4 # 400 KB of doubles: bigger than the 16 KB heap-copy threshold
  list(
    dbl_empty = double(0),
    int_empty = integer(0),
    lgl_empty = logical(0),
    raw_empty = raw(0),
    cplx_empty = complex(0),
    dbl_one = 3.5,
    dbl_special = c(1, NA, NaN, Inf, -Inf, -0, .Machine$double.xmax, .Machine$double.xmin),
    dbl_big = rnorm(n),
    int_small = c(1L, NA, -5L, .Machine$integer.max, -.Machine$integer.max),
    int_big = sample.int(1e6, n, replace = TRUE),
    lgl_small = c(TRUE, FALSE, NA),
    lgl_big = sample(c(TRUE, FALSE, NA), n, replace = TRUE),
    raw_small = as.raw(c(0, 1, 127, 255)),
    raw_big = as.raw(sample.int(256, n, replace = TRUE) - 1L),
    cplx_small = complex(real = c(1, NA, Inf), imaginary = c(-1, 2, NaN)),
    cplx_big = complex(real = rnorm(n), imaginary = rnorm(n)),
    named = c(a = 1, b = 2, c = NA),
    named_big = setNames(seq_len(2000), paste0("n", seq_len(2000))),
    matrix = matrix(as.double(1:12), 3, 4, dimnames = list(letters[1:3], LETTERS[1:4])),
    array = array(1:24, c(2, 3, 4)),
    array_dimnames = array(as.raw(1:8), c(2, 2, 2), dimnames = list(c("x", "y"), NULL, c("p", "q"))),
    lgl_matrix = matrix(c(TRUE, NA, FALSE, TRUE), 2),
    factor = factor(c("lo", "hi", NA, "lo"), levels = c("lo", "hi")),
    ordered = factor(c("b", "a", "c"), levels = c("c", "b", "a"), ordered = TRUE),
    date = as.Date("2024-02-29") + c(0:3, NA),
    posixct = as.POSIXct(c("2024-01-01 12:00:00", NA), tz = "Europe/Paris"),
    difftime = as.difftime(c(1.5, 2), units = "hours"),
    classed = structure(1:3, class = c("my_class", "other")),
    custom = structure(c(1 + 2i, 3i), foo = "bar", meta = list(a = 1, b = letters), num = 1:3),
    table = table(c("a", "b", "a"))
  )
}

# Memory figures of this process, in MB: "Anonymous" (private anonymous
# pages, from smaps_rollup) and "RssShmem" (resident shared-memory pages).
mem_mb <- function(field) {
  skip_without_proc()
  if (field == "RssShmem") {
    lines <- readLines("/proc/self/status")
  } else {
    lines <- readLines("/proc/self/smaps_rollup")
  }
  line <- grep(paste0("^", field, ":"), lines, value = TRUE)
  as.numeric(gsub("[^0-9]", "", line)) / 1024
}
