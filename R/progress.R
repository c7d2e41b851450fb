# Progress of a long share(), drawn from Rust (src/rust/src/pace.rs) every
# 0.2 s once a share has run longer than getOption("mori.progress_delay", 2)
# seconds, when getOption("mori.progress") is TRUE (default: in interactive
# sessions). A cli progress bar when cli is installed, else a message line.
progress_state <- new.env()

progress <- function(done, total, finished) {
  if (requireNamespace("cli", quietly = TRUE)) {
    if (is.null(progress_state$bar)) {
      old <- options(cli.progress_show_after = 0)
      on.exit(options(old))
      progress_state$bar <- cli::cli_progress_bar(
        "Sharing", total = total, type = "tasks", .auto_close = FALSE, .envir = progress_state,
        format = "Sharing {cli::pb_bar} {cli::pb_percent} of {prettyNum(cli::pb_total / 1e6, big.mark = ',')} MB | {cli::pb_elapsed}"
      )
    }
    cli::cli_progress_update(set = done, id = progress_state$bar, .envir = progress_state)
    if (finished) {
      cli::cli_progress_done(id = progress_state$bar, .envir = progress_state)
      progress_state$bar <- NULL
    }
  } else {
    message(sprintf("\rSharing: %3.0f%% of %.0f MB", 100 * done / total, total / 1e6), appendLF = finished)
  }
  invisible()
}
