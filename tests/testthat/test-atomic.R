test_that("share() returns views identical to the input, for every atomic type and attribute", {
  cases <- atomic_cases()
  for (nm in names(cases)) {
    x <- cases[[nm]]
    s <- share(x)
    expect_identical(s, x, label = nm)
    expect_identical(attributes(s), attributes(x), label = paste(nm, "attributes"))
    expect_identical(typeof(s), typeof(x), label = paste(nm, "type"))
    expect_identical(length(s), length(x), label = paste(nm, "length"))
    expect_true(is_shared(s), label = paste(nm, "is_shared"))
    expect_false(is_shared(x), label = paste(nm, "original is not shared"))
    expect_match(shared_name(s), "^/mori_[0-9a-f]+_[0-9a-f]+_[0-9a-f]+([+][0-9a-f]+)?$", label = nm)
    expect_null(shared_name(x), label = paste(nm, "original has no name"))
  }
})

test_that("element access, arithmetic and summaries on views match the original", {
  cases <- atomic_cases()
  for (nm in c("dbl_big", "int_big", "lgl_big", "cplx_big", "dbl_special", "int_small")) {
    x <- cases[[nm]]
    s <- share(x)
    expect_identical(s[length(s)], x[length(x)], label = nm)
    expect_identical(s[c(1, 3, 2)], x[c(1, 3, 2)], label = nm)
    expect_identical(sum(s, na.rm = TRUE), sum(x, na.rm = TRUE), label = nm)
    expect_identical(rev(s), rev(x), label = nm)
    expect_identical(s == s[1], x == x[1], label = nm)
    expect_identical(is.na(s), is.na(x), label = nm)
  }
  x <- cases$dbl_big
  s <- share(x)
  expect_identical(sort(s), sort(x))
  expect_identical(order(s), order(x))
  expect_identical(cumsum(s), cumsum(x))
  expect_identical(s * 2 + 1, x * 2 + 1)
  expect_identical(mean(s), mean(x))
  expect_identical(as.integer(share(cases$raw_big)), as.integer(cases$raw_big))
})

test_that("scattered subsets of views match the original, out-of-range and NA indices included", {
  cases <- atomic_cases()
  for (nm in names(cases)) {
    x <- unclass(cases[[nm]])
    attributes(x) <- NULL
    s <- share(x)
    n <- length(x)
    idx <- list(
      int = c(sample.int(max(n, 1), 50, replace = TRUE), NA, n, n + 1L, 1L),
      dbl = c(as.double(sample.int(max(n, 1), 50, replace = TRUE)) + 0.7, NA, NaN, n + 1, 1e15, 1),
      long = sample.int(max(n, 1), 5000, replace = TRUE),
      empty = integer(0)
    )
    for (k in names(idx)) {
      expect_identical(s[idx[[k]]], x[idx[[k]]], label = paste(nm, k))
    }
  }
})

test_that("views survive serialize()/unserialize() in this process", {
  cases <- atomic_cases()
  for (nm in names(cases)) {
    x <- cases[[nm]]
    s <- share(x)
    back <- unserialize(serialize(s, NULL))
    expect_identical(back, x, label = nm)
    expect_true(is_shared(back), label = nm)
    expect_identical(shared_name(back), shared_name(s), label = nm)
    # also through saveRDS()/readRDS() and the xdr = FALSE format
    f <- tempfile(fileext = ".rds")
    saveRDS(s, f)
    expect_identical(readRDS(f), x, label = paste(nm, "rds"))
    unlink(f)
    expect_identical(unserialize(serialize(s, NULL, xdr = FALSE)), x, label = paste(nm, "native"))
  }
})

test_that("map_shared(shared_name(x)) gives back an identical object in this process", {
  cases <- atomic_cases()
  for (nm in names(cases)) {
    x <- cases[[nm]]
    s <- share(x)
    m <- map_shared(shared_name(s))
    expect_identical(m, x, label = nm)
    expect_true(is_shared(m), label = nm)
    expect_identical(shared_name(m), shared_name(s), label = nm)
  }
})

test_that("shared references are compact whatever the length of the vector", {
  skip_on_cran()
  big <- list(
    dbl = seq_len(1e7) + 0.5,
    int = seq_len(1e7) + 0L,
    lgl = rep(c(TRUE, FALSE, NA), length.out = 1e7),
    raw = as.raw(rep(1:255, length.out = 1e7)),
    cplx = complex(real = seq_len(1e6), imaginary = 1),
    mat = matrix(0, 1000, 1000),
    fac = factor(rep(c("a", "b"), 5e6)),
    posix = .POSIXct(seq(0, by = 1, length.out = 1e6), tz = "UTC")
  )
  for (nm in names(big)) {
    x <- big[[nm]]
    s <- share(x)
    # R writes an ALTREP object's attributes after its reference: allow for
    # them (they are small and do not grow with the length)
    attr_bytes <- if (is.null(attributes(x))) 0 else length(serialize(attributes(x), NULL))
    expect_lt(length(serialize(s, NULL)), 200 + attr_bytes, label = paste(nm, "serialized size"))
    expect_lt(length(serialize(s, NULL, xdr = FALSE)), 200 + attr_bytes, label = paste(nm, "native size"))
    expect_lt(length(serialize(s, NULL)), length(serialize(x, NULL)) / 1000, label = nm)
  }
  # the size does not grow with the length
  small <- length(serialize(share(c(1, 2)), NULL))
  large <- length(serialize(share(big$dbl), NULL))
  expect_lt(large, 200)
  expect_lt(abs(large - small), 50)
})

test_that("atomic views read the right values in another process", {
  cases <- atomic_cases()
  shared <- lapply(cases, share)
  names <- vapply(shared, shared_name, "")
  res <- in_child(function(shared, plain, names) {
    lapply(names(plain), function(nm) {
      x <- shared[[nm]]
      m <- mori::map_shared(names[[nm]])
      list(
        identical = identical(x, plain[[nm]]),
        attrs = identical(attributes(x), attributes(plain[[nm]])),
        is_shared = mori::is_shared(x),
        name = mori::shared_name(x),
        mapped = identical(m, plain[[nm]]),
        mapped_shared = mori::is_shared(m),
        reserialized = identical(unserialize(serialize(x, NULL)), plain[[nm]]),
        sum = if (is.numeric(x) || is.logical(x)) sum(as.double(x), na.rm = TRUE) else NA
      )
    })
  }, list(shared = shared, plain = cases, names = names))
  names(res) <- names(cases)
  for (nm in names(cases)) {
    r <- res[[nm]]
    expect_true(r$identical, label = paste(nm, "identical in child"))
    expect_true(r$attrs, label = paste(nm, "attributes in child"))
    expect_true(r$is_shared, label = paste(nm, "is_shared in child"))
    expect_identical(r$name, names[[nm]], label = paste(nm, "name in child"))
    expect_true(r$mapped, label = paste(nm, "map_shared in child"))
    expect_true(r$mapped_shared, label = paste(nm, "mapped is_shared in child"))
    expect_true(r$reserialized, label = paste(nm, "reserialized in child"))
    x <- cases[[nm]]
    if (is.numeric(x) || is.logical(x)) {
      expect_identical(r$sum, sum(as.double(x), na.rm = TRUE), label = paste(nm, "sum in child"))
    }
  }
})

test_that("a raw vector longer than 2^31 elements is shared", {
  skip_on_cran()
  skip_if(mem_available_gb() < 10, "not enough memory for a 2 GB vector")
  n <- 2^31 + 10
  x <- raw(n)
  pos <- c(1, 2^31 - 1, 2^31, 2^31 + 1, n)
  x[pos] <- as.raw(c(11, 12, 13, 14, 15))
  s <- share(x)
  expect_true(is_shared(s))
  expect_identical(length(s), n)
  expect_identical(s[pos], as.raw(c(11, 12, 13, 14, 15)))
  expect_identical(s, x)
  rm(x)
  expect_lt(length(serialize(s, NULL)), 200)
  back <- unserialize(serialize(s, NULL))
  expect_identical(length(back), n)
  expect_identical(back[pos], as.raw(c(11, 12, 13, 14, 15)))
  res <- in_child(function(s, name, pos) {
    m <- mori::map_shared(name)
    list(len = length(s), vals = s[pos], shared = mori::is_shared(s),
         mlen = length(m), mvals = m[pos],
         head = sum(as.integer(s[1:1e6])), tail = sum(as.integer(s[(length(s) - 1e6 + 1):length(s)])))
  }, list(s = s, name = shared_name(s), pos = pos))
  expect_identical(res$len, n)
  expect_identical(res$vals, as.raw(c(11, 12, 13, 14, 15)))
  expect_true(res$shared)
  expect_identical(res$mlen, n)
  expect_identical(res$mvals, as.raw(c(11, 12, 13, 14, 15)))
  expect_identical(res$head, 11L)
  expect_identical(res$tail, 12L + 13L + 14L + 15L)
  rm(s, back)
  full_gc()
})

test_that("objects that cannot be shared come back unchanged", {
  f <- function(x) x + 1
  env <- new.env()
  assign("v", 1, envir = env)
  g <- local(function() v, envir = env)
  fm <- y ~ x + z
  ptr <- methods::new("externalptr")
  s4 <- methods::getClass("numeric")
  gen <- methods::setClass("MoriTestS4", representation(v = "numeric"), where = new.env())
  s4obj <- gen(v = 1:3 + 0)
  others <- list(
    null = NULL, closure = f, closure_env = g, builtin = sum, special = `if`,
    env = env, formula = fm, extptr = ptr, s4 = s4, s4obj = s4obj,
    symbol = as.name("abc"), call = quote(f(x, 1)), globalenv = globalenv()
  )
  for (nm in names(others)) {
    x <- others[[nm]]
    s <- share(x)
    expect_identical(s, x, label = nm)
    expect_false(is_shared(s), label = nm)
    expect_null(shared_name(s), label = nm)
  }
  expect_null(share(NULL))
  expect_true(identical(environment(share(g)), env))
  expect_true(identical(share(env), env))
  expect_true(identical(environment(share(fm)), environment(fm)))
  # the environment is the same object, not a copy: assignments show through
  e2 <- share(env)
  e2$w <- 2
  expect_identical(get("w", envir = env), 2)
})
