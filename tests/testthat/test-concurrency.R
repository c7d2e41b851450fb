# Concurrency: several processes sharing at once.
# Bigger runs and figures: tools/reliability/ (see its README.md).
# Shared helpers (rel_child(), rel_tag, ...): helper-reliability.R.

test_that("8 processes sharing 1,000 objects each at once: no collision, no error", {
  skip_on_cran()
  skip_if_not_installed("callr")
  go <- tempfile("go")
  race <- paste0(rel_tag, "_race")
  procs <- lapply(1:8, function(k) callr::r_bg(function(go, race) {
    while (!file.exists(go)) Sys.sleep(0.01)
    keep <- vector("list", 1000)
    names <- character(1000)
    for (i in 1:1000) {
      keep[[i]] <- mori::share(c(i, runif(3)))
      names[i] <- mori::shared_name(keep[[i]])
    }
    # every process tries to publish the same 20 names: one winner each
    won <- character()
    errs <- character()
    for (j in 1:20) {
      n <- sprintf("%s%d", race, j)
      r <- tryCatch({
        assign(paste0("p", j), mori::share(j, name = n))
        won <- c(won, n)
      }, error = function(e) errs <<- c(errs, paste(class(e)[1], conditionMessage(e))))
    }
    list(names = names, pid = Sys.getpid(), won = won, errs = errs)
  }, args = list(go = go, race = race), libpath = .libPaths()))
  Sys.sleep(1)
  file.create(go)
  on.exit(unlink(go), add = TRUE)
  on.exit(for (j in 1:20) try(unshare(sprintf("%s%d", race, j)), silent = TRUE), add = TRUE)
  for (p in procs) p$wait(60000)
  res <- lapply(procs, function(p) p$get_result())
  all_names <- unlist(lapply(res, `[[`, "names"))
  expect_length(all_names, 8000)
  expect_equal(anyDuplicated(all_names), 0)
  won <- unlist(lapply(res, `[[`, "won"))
  expect_setequal(won, sprintf("%s%d", race, 1:20))
  expect_equal(anyDuplicated(won), 0)
  errs <- unlist(lapply(res, `[[`, "errs"))
  expect_length(errs, 8 * 20 - 20)
  expect_true(all(grepl("^mori_error_name_taken a region is published under the name '.*' already\n", errs)))
})
