# Compiles C source text into a shared library with R CMD SHLIB, once per
# source text and process; returns the library's path, or signals an error
# carrying the compiler's output when it cannot be built. Used by the
# tests (test-boundary.R's foreign ALTREP classes) and, through
# bench/common.R, by the benchmarks (the ALTREP floor): base R only.
compile_shlib <- local({
  built <- list()
  function(src_text, name) {
    key <- paste(name, src_text)
    if (!is.null(built[[key]])) return(built[[key]])
    dir <- tempfile(paste0("mori-", name, "-"))
    dir.create(dir)
    src <- file.path(dir, paste0(name, ".c"))
    writeLines(src_text, src)
    r <- file.path(R.home("bin"), "R")
    out <- suppressWarnings(system2(r, c("CMD", "SHLIB", shQuote(src)), stdout = TRUE, stderr = TRUE))
    lib <- file.path(dir, paste0(name, .Platform$dynlib.ext))
    if (!file.exists(lib)) stop("R CMD SHLIB failed:\n", paste(out, collapse = "\n"), call. = FALSE)
    built[[key]] <<- lib
    lib
  }
})
