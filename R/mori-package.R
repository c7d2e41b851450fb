#' @keywords internal
#' @useDynLib mori, .registration = TRUE
"_PACKAGE"
