/* Calls into R that may long-jump (an error, an interrupt, a restart) run
   here, so that the jump never crosses a Rust frame: R_UnwindProtect stops it
   at its own context, its clean-up function jumps back into this C frame,
   and mori_unwind_protect returns 1. The Rust caller then unwinds its frames
   normally (dropping what they own) and resumes R's jump at the R boundary
   with R_ContinueUnwind(token). See src/rust/src/rapi/unwind.rs. */
#include <setjmp.h>
#include <Rinternals.h>

#ifdef _WIN32
/* Windows has no sigsetjmp, and mingw-w64's longjmp unwinds the frames it
   crosses through SEH: gcc's builtins jump straight back, as R's own
   contexts do on Windows. The buffer is five words. */
typedef void *mori_jmp_buf[5];
#define MORI_SETJMP(buf) __builtin_setjmp(buf)
#define MORI_LONGJMP(buf) __builtin_longjmp(buf, 1)
#else
/* sigsetjmp(, 0): the signal mask is not saved (no system call per call),
   as R's own contexts do. */
typedef sigjmp_buf mori_jmp_buf;
#define MORI_SETJMP(buf) sigsetjmp(buf, 0)
#define MORI_LONGJMP(buf) siglongjmp(buf, 1)
#endif

static void mori_jump_back(void *jmpbuf, Rboolean jump) {
  if (jump) MORI_LONGJMP(*(mori_jmp_buf *) jmpbuf);
}

int mori_unwind_protect(SEXP (*fun)(void *), void *data, SEXP token) {
  mori_jmp_buf jmpbuf;
  if (MORI_SETJMP(jmpbuf)) return 1;
  R_UnwindProtect(fun, data, mori_jump_back, &jmpbuf, token);
  return 0;
}
