# Summaries of shared vectors (answered from the region's metadata for
# vectors of 1024+ elements: sum, min, max, anyNA, sortedness) are R's own,
# bit for bit: a generated grid of NA/NaN/Inf/-Inf/-0/0 placements and
# lengths around every threshold (1024 elements, the 16384-element copy
# chunk, the 4 MB size from which a second thread computes them), compared
# with what R computes on the plain vector in the same process.

# Bitwise for doubles: NA is not NaN, -0 is not 0, NaN signs differ.
same_bits <- function(a, b) identical(a, b, num.eq = FALSE, single.NA = FALSE)

# The value and the warning (if any) of f(x).
outcome <- function(f, x) {
  warning <- NULL
  value <- withCallingHandlers(f(x), warning = function(w) {
    warning <<- conditionMessage(w)
    invokeRestart("muffleWarning")
  })
  list(value = value, warning = warning)
}

summaries <- list(
  sum = function(x) sum(x),
  sum_narm = function(x) sum(x, na.rm = TRUE),
  min = function(x) min(x),
  min_narm = function(x) min(x, na.rm = TRUE),
  max = function(x) max(x),
  max_narm = function(x) max(x, na.rm = TRUE),
  range = function(x) range(x),
  range_narm = function(x) range(x, na.rm = TRUE),
  anyNA = function(x) anyNA(x),
  is_unsorted = function(x) is.unsorted(x),
  is_unsorted_strictly = function(x) is.unsorted(x, strictly = TRUE),
  is_unsorted_narm = function(x) is.unsorted(x, na.rm = TRUE),
  sort = function(x) sort(x),
  sort_decreasing = function(x) sort(x, decreasing = TRUE),
  mean = function(x) mean(x)
)

bits <- function(v) {
  if (is.double(v)) paste(sprintf("%a", v), collapse = " ") else paste(format(v), collapse = " ")
}

# Compares every summary of each shared vector with the plain vector's;
# returns the failures as text. The batch is shared as one list (one
# region; every vector gets its own summaries, as it would alone).
compare_summaries <- function(batch, which = names(summaries)) {
  shared <- share(batch)
  bad <- character()
  for (label in names(batch)) {
    x <- batch[[label]]
    s <- shared[[label]]
    for (f in which) {
      want <- outcome(summaries[[f]], x)
      got <- outcome(summaries[[f]], s)
      if (!same_bits(got$value, want$value) || !identical(got$warning, want$warning)) {
        bad <- c(bad, sprintf("%s of %s: got %s, R gives %s", f, label, bits(got$value), bits(want$value)))
      }
    }
  }
  bad
}

# A negative NaN (the sign is the only difference from R's NaN), made from
# its bytes so that no arithmetic decides the sign.
neg_nan <- readBin(as.raw(c(0, 0, 0, 0, 0, 0, 0xf8, 0xff)), "double")
neg_zero <- readBin(as.raw(c(0, 0, 0, 0, 0, 0, 0, 0x80)), "double")

# Places `specials` into `base` at `positions` (a recipe name).
place <- function(base, specials, where) {
  n <- length(base)
  k <- length(specials)
  at <- switch(where,
    first = seq_len(k),
    last = n - k + seq_len(k),
    middle = n %/% 2 + seq_len(k),
    chunk = pmin(n, 16384 + seq_len(k) - 1L), # across the 16384-element copy chunk
    spread = unique(round(seq(1, n, length.out = k))),
    ends = c(1, if (k > 1) n - k + 1 + seq_len(k - 1) - 1))
  base[at[seq_along(specials)]] <- specials[seq_along(at)]
  base
}

double_specials <- list(
  "NA" = NA_real_, "NaN" = NaN, "-NaN" = neg_nan, "Inf" = Inf, "-Inf" = -Inf, "-0" = neg_zero, "0" = 0,
  "NaN,NA" = c(NaN, NA), "NA,NaN" = c(NA, NaN), "-NaN,NA" = c(neg_nan, NA), "NaN,-NaN" = c(NaN, neg_nan),
  "Inf,-Inf" = c(Inf, -Inf), "-Inf,Inf" = c(-Inf, Inf), "Inf,-Inf,NA" = c(Inf, -Inf, NA),
  "NA,Inf,-Inf" = c(NA, Inf, -Inf), "Inf,-Inf,NaN" = c(Inf, -Inf, NaN), "Inf,NaN,-Inf" = c(Inf, NaN, -Inf),
  "NaN,Inf" = c(NaN, Inf), "-Inf,NA,NaN" = c(-Inf, NA, NaN), "NA,NA" = c(NA, NA),
  "-0,0" = c(neg_zero, 0), "0,-0" = c(0, neg_zero), "NaN,NA,Inf,-Inf,-0,0" = c(NaN, NA, Inf, -Inf, neg_zero, 0),
  "max,max" = c(.Machine$double.xmax, .Machine$double.xmax), "-max,-max" = -c(.Machine$double.xmax, .Machine$double.xmax)
)

double_bases <- function(n) {
  set.seed(n)
  list(
    random = rnorm(n),
    increasing = as.double(seq_len(n)),
    decreasing = as.double(rev(seq_len(n))),
    zeros = double(n),
    negative_zeros = rep(neg_zero, n),
    signed_zeros = rep_len(c(0, neg_zero, 0, 0, neg_zero), n),
    positive_with_zeros = c(5, 5, 5, rep_len(c(0, neg_zero), n - 3)),
    small_integers = as.double(sample(-3:3, n, replace = TRUE)),
    tiny = rep_len(c(1e-300, -1e-300, 1e300), n)
  )
}

int_specials <- list("NA" = NA_integer_, "NA,NA" = c(NA_integer_, NA_integer_),
                     "max" = .Machine$integer.max, "-max" = -.Machine$integer.max, "0" = 0L)

int_bases <- function(n) {
  set.seed(n)
  list(
    random = sample.int(1e6, n, replace = TRUE) - 5e5L,
    increasing = seq_len(n),
    decreasing = rev(seq_len(n)),
    constant = rep(7L, n),
    near_overflow = rep_len(c(.Machine$integer.max, 1L), n)
  )
}

logical_bases <- function(n) {
  set.seed(n)
  list(random = sample(c(TRUE, FALSE), n, replace = TRUE), all_true = rep(TRUE, n),
       sorted = rep(c(FALSE, TRUE), c(n %/% 2, n - n %/% 2)))
}

# Lengths around the thresholds (1024 elements; the 16384-element copy
# chunk; the 4 MB size from which a second thread computes the summaries).
small_lengths <- c(1023, 1024, 1025, 16385)
wheres <- c("first", "last", "middle", "chunk", "spread", "ends")
few_wheres <- c("first", "last", "spread")

# The summaries the region answers (sum, min, max, anyNA, sortedness), and
# those R computes from the data (range() copies its argument, mean() and
# sort() of unsorted data read every element): the latter, slower (x87
# arithmetic on NaN is slow), on part of the grid.
answered <- c("sum", "sum_narm", "min", "min_narm", "max", "max_narm", "anyNA", "is_unsorted",
              "is_unsorted_strictly", "is_unsorted_narm")

run_grid <- function(type, lengths, bases, specials, where, which = names(summaries)) {
  failures <- character()
  cases <- 0
  for (n in lengths) {
    all_bases <- bases(n)
    for (b in names(all_bases)) {
      base <- all_bases[[b]]
      batch <- list(base)
      names(batch) <- sprintf("%s %s n=%d", type, b, n)
      for (sp in names(specials)) {
        for (w in where) {
          batch[[sprintf("%s %s n=%d with %s at %s", type, b, n, sp, w)]] <- place(base, specials[[sp]], w)
        }
      }
      failures <- c(failures, compare_summaries(batch, which))
      cases <- cases + length(batch)
    }
    gc(verbose = FALSE)
  }
  list(failures = failures, cases = cases)
}

report <- function(res) {
  expect_identical(head(res$failures, 20), character(), label = paste(length(res$failures), "mismatches"))
  expect_gt(res$cases, 0)
}

test_that("double summaries match R on a grid of special values and lengths", {
  n_summaries <- 0
  res <- list(failures = character(), cases = 0)
  for (n in small_lengths) {
    where <- if (n %in% c(1024, 16385)) wheres else few_wheres
    which <- if (n == 1024) names(summaries) else answered
    r <- run_grid("double", n, double_bases, double_specials, where, which)
    res <- list(failures = c(res$failures, r$failures), cases = res$cases + r$cases)
    n_summaries <- n_summaries + r$cases * length(which)
  }
  report(res)
  message(sprintf("double grid: %d vectors, %d summaries compared", res$cases, n_summaries))
})

test_that("double summaries computed on the second thread (4 MB and over) match R", {
  skip_if(mem_available_gb() < 1, "not enough memory")
  big <- c(524287, 524288, 524289)
  bases <- function(n) double_bases(n)[c("random", "signed_zeros", "positive_with_zeros")]
  late <- double_specials[c("NA", "NaN,NA", "NA,NaN", "Inf,-Inf,NA", "-Inf,Inf", "-0,0", "0,-0",
                            "NaN,NA,Inf,-Inf,-0,0", "max,max")]
  res1 <- run_grid("double", big, bases, late, "last", answered)
  # NaN from the first element on (x87 additions on NaN are slow): fewer.
  res2 <- run_grid("double", big, function(n) double_bases(n)["random"],
                   double_specials[c("NaN,NA", "NA,NaN", "Inf,-Inf,NA")], "first", answered)
  res <- list(failures = c(res1$failures, res2$failures), cases = res1$cases + res2$cases)
  report(res)
  message(sprintf("double 4 MB grid: %d vectors, %d summaries compared", res$cases, res$cases * length(answered)))
})

test_that("small vectors summarised on the second thread with the rest of a share match R", {
  # A share whose vectors with summaries add up to 4 MB or more has all of
  # them summarised on a second thread while R's copies (a 1000-column
  # data frame): small vectors of every type and special placement, with a
  # filler that takes the share over that size.
  batch <- list(filler = stats::runif(6e5))
  lgl_specials <- list("NA" = NA, "TRUE" = TRUE, "FALSE" = FALSE)
  for (n in c(1024, 1025, 16385)) {
    for (sp in names(double_specials)) for (w in few_wheres)
      batch[[sprintf("double n=%d %s at %s", n, sp, w)]] <- place(double_bases(n)[["random"]], double_specials[[sp]], w)
    for (b in c("random", "increasing")) for (sp in names(int_specials)) for (w in few_wheres)
      batch[[sprintf("integer %s n=%d %s at %s", b, n, sp, w)]] <- place(int_bases(n)[[b]], int_specials[[sp]], w)
    batch[[sprintf("integer increasing n=%d", n)]] <- int_bases(n)$increasing
    batch[[sprintf("logical sorted n=%d", n)]] <- logical_bases(n)$sorted
    for (sp in names(lgl_specials)) for (w in few_wheres)
      batch[[sprintf("logical n=%d %s at %s", n, sp, w)]] <- place(logical_bases(n)[[1]], lgl_specials[[sp]], w)
  }
  expect_gt(sum(vapply(batch, function(v) as.numeric(object.size(v)), 0)), 4 * 2^20)
  res <- list(failures = compare_summaries(batch, answered), cases = length(batch))
  report(res)
  message(sprintf("second-thread batch: %d vectors, %d summaries compared", res$cases, res$cases * length(answered)))
})

test_that("integer and logical summaries match R around every threshold", {
  lengths <- c(small_lengths, 32768, 1048575, 1048576, 1048577)
  res_int <- run_grid("integer", lengths, int_bases, int_specials, c("first", "last", "middle", "spread"), answered)
  report(res_int)
  lgl_specials <- list("NA" = NA, "NA,NA" = c(NA, NA), "TRUE" = TRUE, "FALSE" = FALSE)
  res_lgl <- run_grid("logical", lengths, logical_bases, lgl_specials, c("first", "last", "middle", "spread"), answered)
  report(res_lgl)
  small <- run_grid("integer", 1025, int_bases, int_specials, c("first", "spread"))
  report(small)
  cases <- res_int$cases + res_lgl$cases
  message(sprintf("integer and logical grid: %d vectors, %d summaries compared",
                  cases + small$cases, cases * length(answered) + small$cases * length(summaries)))
})

test_that("vectors of only NA, only NaN, only infinities", {
  batch <- list()
  for (n in c(1024, 20000)) {
    for (v in list(NA_real_, NaN, neg_nan, Inf, -Inf, neg_zero)) batch[[paste(bits(v), n)]] <- rep(v, n)
    batch[[paste("int NA", n)]] <- rep(NA_integer_, n)
    batch[[paste("lgl NA", n)]] <- rep(NA, n)
  }
  expect_identical(compare_summaries(batch), character())
})
