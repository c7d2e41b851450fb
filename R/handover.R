# Results travel by value (DESIGN.md): an object on a region this process
# created serializes as a reference, except in the result a worker hands
# back for a task, because the worker may drop the region, or exit, before
# the receiver maps it. In a process that may be such a worker, the native
# code calls hands_back_result() when it serializes an object on one of the
# process's own regions, to ask whether the serialization under way is a
# hand-over. It is recognised from the closures on the call stack:
#
# - callr (r(), r_bg(), r_session, and what runs on them: targets,
#   future.callr): the child's script saves the result with saveRDS() to its
#   result file (callr-res-*, callr-rs-result-*, and their .error files).
# - parallel's socket workers (makeCluster(), future multisession, foreach
#   with doParallel): workCommand() sends the value to its master with
#   sendData(). Tasks a worker sends to its own workers go through postNode().
# - parallel's forked children (mclapply(), mcparallel(), pvec(), future
#   multicore): sendMaster() serializes the value for the parent.
# - mirai daemons (also crew's workers): daemon() sends the task's value with
#   nanonext's send(); tasks a daemon sends to its own daemons go through
#   mirai() and request().

# The function `name` of the namespace `pkg`, if that namespace is loaded.
loaded_function <- function(pkg, name) {
  if (!isNamespaceLoaded(pkg)) {
    return(NULL)
  }
  get0(name, envir = asNamespace(pkg), inherits = FALSE)
}

is_function <- function(f, pkg, names) {
  for (name in names) {
    if (identical(f, loaded_function(pkg, name))) {
      return(TRUE)
    }
  }
  FALSE
}

# The function of frame `n` (NULL for frame 0, the top level).
frame_function <- function(n) {
  if (n < 1L) NULL else sys.function(n)
}

is_callr_result_file <- function(file) {
  is.character(file) && length(file) == 1L && grepl("^callr-(res|rs-result)-", basename(file))
}

# Whether the closure of frame `n` (the one serializing), called from frame
# `caller`, itself called from frame `grand`, is a hand-over.
is_handover <- function(n, caller, grand) {
  f <- sys.function(n)
  if (identical(f, base::saveRDS)) {
    return(is_callr_result_file(get0("file", envir = sys.frame(n), inherits = FALSE)))
  }
  if (identical(f, base::serialize)) {
    from <- frame_function(caller)
    return(is_function(from, "parallel", "sendMaster") ||
      (is_function(from, "parallel", c("sendData.SOCKnode", "sendData.SOCK0node")) &&
        is_function(frame_function(grand), "parallel", c("workCommand", "workLoop"))))
  }
  is_function(f, "nanonext", "send") && is_function(frame_function(caller), "mirai", "daemon")
}

# Called by the native code: the frame of the closure that called it (the
# one serializing), so that one serialization is judged once.
serializing_frame <- function() {
  sys.frame(-1L)
}

# Called by the native code: whether the closure that called the native code
# (the frame just below this one) is a worker handing back a task's result.
hands_back_result <- function() {
  n <- sys.nframe() - 1L
  if (n < 1L) {
    return(FALSE)
  }
  parents <- sys.parents()
  caller <- parents[n]
  grand <- if (caller >= 1L) parents[caller] else 0L
  isTRUE(tryCatch(is_handover(n, caller, grand), error = function(e) FALSE))
}
