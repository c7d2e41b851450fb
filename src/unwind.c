/* Calls into R that may long-jump (an error, an interrupt, a restart) run
   here, so that the jump never crosses a Rust frame: R_UnwindProtect stops it
   at its own context, its clean-up function jumps back into this C frame,
   and mori_unwind_protect returns 1. The Rust caller then unwinds its frames
   normally (dropping what they own) and resumes R's jump at the R boundary
   with R_ContinueUnwind(token). See src/rust/src/rapi/unwind.rs. */
#include <setjmp.h>
#include <Rinternals.h>

/* sigsetjmp(, 0): the signal mask is not saved (no system call per call),
   as R's own contexts do. */
static void mori_jump_back(void *jmpbuf, Rboolean jump) {
  if (jump) siglongjmp(*(sigjmp_buf *) jmpbuf, 1);
}

int mori_unwind_protect(SEXP (*fun)(void *), void *data, SEXP token) {
  sigjmp_buf jmpbuf;
  if (sigsetjmp(jmpbuf, 0)) return 1;
  R_UnwindProtect(fun, data, mori_jump_back, &jmpbuf, token);
  return 0;
}
