# References from another host.
# Bigger runs and figures: tools/reliability/ (see its README.md).
# Shared helpers (rel_child(), rel_tag, ...): helper-reliability.R.

# The host id as references carry it: the first 4 bytes of the boot id, in
# binary, found in `s`, and where.
rel_host_in <- function(s) {
  host <- reference_host()
  at <- reference_host_at(s, host)
  if (length(at) == 1) list(at = at, len = length(host)) else NULL
}

test_that("a reference whose host id is changed errors with 'another machine'", {
  skip_on_cran()
  x <- share(rnorm(100))
  s <- serialize(x, NULL)
  h <- rel_host_in(s)
  expect_false(is.null(h))
  for (fill in c("0", "f", "a")) {
    other <- s
    other[h$at:(h$at + h$len - 1)] <- charToRaw(strrep(fill, h$len))
    if (identical(other, s)) next
    expect_match(rel_err(unserialize(other)), "another machine")
  }
  expect_identical(unserialize(s), x)
  # also for a published region
  name <- paste0(rel_tag, "_host")
  p <- share(1:5, name = name)
  on.exit(unshare(name))
  s <- serialize(map_shared(name), NULL)
  h <- rel_host_in(s)
  s[h$at:(h$at + h$len - 1)] <- charToRaw(strrep(if (s[h$at] == charToRaw("f")) "e" else "f", h$len))
  expect_match(rel_err(unserialize(s)), "another machine")
})
