# A file or stream that holds a reference to a region that no longer exists
# says so, and says that materialize(x) saves the data.

saved_cases <- function() {
  df <- data.frame(y = sin(1:5e4), x = cos(1:5e4), g = factor(rep(c("a", "b"), 2.5e4)))
  list(vector = seq(0.5, 1e5), frame = df, strings = rep(c("u", "v", NA), 1e4))
}

expect_gone_reference <- function(expr) {
  e <- tryCatch(expr, error = function(e) e)
  expect_s3_class(e, "mori_error_not_found")
  msg <- conditionMessage(e)
  expect_match(msg, "file or stream read holds only a reference to shared memory", fixed = TRUE)
  expect_match(msg, "no longer exists", fixed = TRUE)
  expect_match(msg, "materialize(x)", fixed = TRUE)
  expect_no_match(msg, "corrupted", fixed = TRUE)
}

test_that("saveRDS() and save() of shared objects store references that explain themselves once gone", {
  cases <- saved_cases()
  files <- list()
  local({
    shared <- lapply(cases, share)
    for (what in names(shared)) {
      files[[what]] <<- tempfile(fileext = ".rds")
      saveRDS(shared[[what]], files[[what]])
      # only the reference is written, far smaller than the data
      expect_lt(file.size(files[[what]]), 2000)
      expect_identical(readRDS(files[[what]]), cases[[what]])
    }
    rda <- tempfile(fileext = ".rda")
    files$rda <<- rda
    frame <- shared$frame
    save(frame, file = rda)
  })
  on.exit(unlink(unlist(files)), add = TRUE)
  full_gc()
  for (what in names(cases)) expect_gone_reference(readRDS(files[[what]]))
  env <- new.env()
  expect_gone_reference(load(files$rda, envir = env))
  # the same in a fresh process
  msg <- in_child(function(f) tryCatch({ readRDS(f); "" }, error = function(e) c(class(e)[1], conditionMessage(e))),
                  list(f = files$vector))
  expect_identical(msg[1], "mori_error_not_found")
  expect_match(msg[2], "materialize(x)", fixed = TRUE)
})

test_that("a model fit on shared columns saves references; materialize() saves the data", {
  d <- saved_cases()$frame
  f_ref <- tempfile(fileext = ".rds")
  f_data <- tempfile(fileext = ".rds")
  on.exit(unlink(c(f_ref, f_data)), add = TRUE)
  # (A formula keeps the environment it was written in, and a saved fit
  # that environment's objects: here the global one, which R saves by name.)
  model <- y ~ x + g
  environment(model) <- globalenv()
  local({
    sd <- share(d)
    fit <- lm(model, data = sd)
    expect_true(is_shared(fit$model$y))
    saveRDS(fit, f_ref)
    saveRDS(materialize(fit), f_data)
  })
  full_gc()
  expect_lt(file.size(f_ref), file.size(f_data))
  expect_gone_reference(readRDS(f_ref))
  plain_fit <- lm(model, data = d)
  got <- readRDS(f_data)
  expect_equal(coef(got), coef(plain_fit))
  expect_identical(got$model$y, d$y)
  expect_identical(in_child(function(f) readRDS(f)$model$x, list(f = f_data)), d$x)
})

test_that("a file a callr child saved of its own shared object is a reference, gone with the child", {
  skip_if_not_installed("callr")
  f <- tempfile(fileext = ".rds")
  on.exit(unlink(f), add = TRUE)
  size <- callr::r(function(f) {
    saveRDS(mori::share(seq(0.5, 1e5)), f)
    file.size(f)
  }, args = list(f = f), libpath = .libPaths())
  expect_lt(size, 2000)
  expect_gone_reference(readRDS(f))
})

test_that("a serialize() stream read after the region is gone says the same", {
  s <- local(serialize(share(seq(0.5, 1e5)), NULL))
  full_gc()
  expect_gone_reference(unserialize(s))
})
