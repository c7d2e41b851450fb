# The thread that summarises vectors of 4 MB or more adds at the x87
# precision of R's thread whatever precision it started with: Windows
# starts threads at 53 bits (R's runs at 64), simulated here on Linux by
# MORI_TEST_THREAD_X87_CONTROL_WORD, which the summary thread loads first.
# The vectors are ones whose sums at 53 bits differ from R's (without the
# summary thread taking R's precision, 5 of the 6 comparisons fail).

precision_cases <- function(n) {
  set.seed(20261201)
  list(
    # at 53 bits every 1 + 2^-53 rounds back to 1; at 64 bits none is lost
    tiny_terms = c(1, rep(2^-53, n)),
    tiny_terms_with_na = c(1, NA, rep(2^-53, n), NaN),
    # ordinary data: the low bits of a long sum depend on the precision
    random = rnorm(n) * 1e6 + 0.1
  )
}

test_that("sums of large vectors are R's when the summary thread starts at 53 bits", {
  skip_if_not(R.version$arch == "x86_64", "x87 extended sums are x86_64's")
  old <- Sys.getenv("MORI_TEST_THREAD_X87_CONTROL_WORD", unset = NA)
  Sys.setenv(MORI_TEST_THREAD_X87_CONTROL_WORD = "0x027f")
  on.exit(if (is.na(old)) Sys.unsetenv("MORI_TEST_THREAD_X87_CONTROL_WORD")
          else Sys.setenv(MORI_TEST_THREAD_X87_CONTROL_WORD = old))
  # 6e5 doubles: 4.8 MB, above the size from which a second thread summarises
  cases <- precision_cases(6e5)
  # the cases are ones where the precision matters
  expect_false(identical(sum(cases$tiny_terms), 1))
  for (label in names(cases)) {
    x <- cases[[label]]
    s <- share(x)
    expect_identical(sum(s), sum(x), label = paste("sum of", label))
    expect_identical(sum(s, na.rm = TRUE), sum(x, na.rm = TRUE),
                     label = paste("sum(na.rm = TRUE) of", label))
  }
})
