# prune_shared() never removes a live creator's region (issue 17, item 9).
#
# Liveness does not rest on process ids: the creator of a published region
# holds a lock on its file for as long as it lives, which the kernel drops
# when it dies. prune_shared() removes a file only if it can take the lock:
# a creator in another PID namespace (a container sharing /dev/shm), which
# has no /proc/<pid> here, keeps its region; a dead creator whose pid now
# belongs to another process loses it.

pl_tag <- sprintf("prune%x", Sys.getpid())
pl_path <- function(name) file.path("/dev/shm", paste0("mori.", name))

pl_publisher <- function(name) {
  c(
    sprintf(".libPaths(c(%s, .libPaths()))", paste(deparse(.libPaths()), collapse = "")),
    "library(mori)",
    sprintf("x <- share(c(a = 1, b = 2, c = 3), name = '%s')", name),
    "rm(x); invisible(gc())", # the creator keeps its region alive without holding it
    "cat('published\\n')",
    "Sys.sleep(120)"
  )
}

test_that("a live creator in another PID namespace keeps its region; once killed it is pruned", {
  skip_on_cran()
  skip_if_not_installed("processx")
  skip_if(Sys.which("unshare") == "", "unshare not available")
  probe <- suppressWarnings(system2("unshare", c("--pid", "--fork", "--mount-proc", "true"),
                                    stdout = FALSE, stderr = FALSE))
  skip_if(probe != 0, "cannot make a PID namespace here")
  name <- paste0(pl_tag, "_ns")
  script <- tempfile(fileext = ".R")
  writeLines(pl_publisher(name), script)
  on.exit(unlink(c(script, pl_path(name))), add = TRUE)
  p <- processx::process$new("unshare", c("--pid", "--fork", "--mount-proc",
                                          file.path(R.home("bin"), "Rscript"), "--vanilla", script),
                             stdout = "|", stderr = "|")
  on.exit(p$kill_tree(), add = TRUE)
  expect_identical(rel_line(p, timeout = 30), "published")
  # The creator runs as pid 1 of its namespace: no /proc/<pid> of it here
  # (or another process's).
  expect_true(file.exists(pl_path(name)))
  for (i in 1:3) {
    removed <- prune_shared()
    expect_false(name %in% removed)
    expect_true(file.exists(pl_path(name)))
  }
  expect_identical(map_shared(name)[], c(a = 1, b = 2, c = 3))
  gc()
  # Killed (SIGKILL to the namespace's init, the R process): pruned.
  kids <- scan(sprintf("/proc/%d/task/%d/children", p$get_pid(), p$get_pid()), integer(), quiet = TRUE)
  expect_length(kids, 1)
  tools::pskill(kids, tools::SIGKILL)
  p$wait(10000)
  # (Any prune_shared() on the machine may be the one that removes it.)
  end <- Sys.time() + 10
  repeat {
    prune_shared()
    if (!file.exists(pl_path(name)) || Sys.time() > end) break
    Sys.sleep(0.2)
  }
  expect_false(file.exists(pl_path(name)))
})

test_that("a live creator that dropped its object keeps its region; SIGKILLed, it is pruned", {
  skip_on_cran()
  skip_if_not_installed("processx")
  name <- paste0(pl_tag, "_host")
  script <- tempfile(fileext = ".R")
  writeLines(pl_publisher(name), script)
  on.exit(unlink(c(script, pl_path(name))), add = TRUE)
  p <- processx::process$new(file.path(R.home("bin"), "Rscript"), c("--vanilla", script), stdout = "|", stderr = "|")
  on.exit(p$kill(), add = TRUE)
  expect_identical(rel_line(p, timeout = 30), "published")
  expect_false(name %in% prune_shared())
  expect_true(file.exists(pl_path(name)))
  p$signal(tools::SIGKILL)
  p$wait(10000)
  prune_shared() # (or any other on the machine)
  expect_false(file.exists(pl_path(name)))
})

test_that("a dead creator whose pid now belongs to a live process is pruned", {
  skip_on_cran()
  skip_if_not_installed("callr")
  name <- paste0(pl_tag, "_reused")
  on.exit(unlink(pl_path(name)), add = TRUE)
  callr::r(function(name) {
    mori::share(1:10, name = name)
    NULL
  }, list(name), libpath = .libPaths())
  expect_true(file.exists(pl_path(name)))
  # The header's creator pid made that of a live process (this one), as a
  # reused pid would be.
  path <- pl_path(name)
  Sys.chmod(path, "600")
  con <- file(path, "r+b")
  seek(con, region_at("header.creator_pid"), rw = "write")
  writeBin(as.integer(Sys.getpid()), con, size = region_field("header.creator_pid")$size, endian = "little")
  close(con)
  prune_shared() # (or any other on the machine)
  expect_false(file.exists(path))
})

test_that("this process's own published regions are never pruned, held or not", {
  name <- paste0(pl_tag, "_own")
  local(share(letters, name = name))
  on.exit(unshare(name), add = TRUE)
  gc()
  expect_false(name %in% prune_shared())
  expect_identical(map_shared(name)[], letters)
  # After unshare() the name is free: publishing again works, and that
  # region is kept too.
  unshare(name)
  y <- share(LETTERS, name = name)
  expect_false(name %in% prune_shared())
  expect_identical(map_shared(name)[], LETTERS)
})
