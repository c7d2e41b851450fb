/* The package's load hook: everything happens in Rust (src/rust). */
#include <R_ext/Rdynload.h>

void mori_init(DllInfo *dll);

void R_init_mori(DllInfo *dll) { mori_init(dll); }
