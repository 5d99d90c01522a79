/*
 * libcublas.so.12 compatibility shim (see docs/cuda.md).
 *
 * JCuda 12.6.0's libJCublas2 needs libcublas.so.12 and binds its symbols at version node "libcublas.so.12".
 * A CUDA-13-only host has libcublas.so.13 instead. This library has SONAME libcublas.so.12 and exports every symbol
 * in symbols.txt at version libcublas.so.12 (linker version script). Each export is a single indirect jump through a
 * pointer that the constructor fills with dlsym() on libcublas.so.13 (or $KILN_CUBLAS_TARGET): arguments, return
 * values and the stack pass through untouched, so no prototypes are needed.
 * A function libcublas.so.13 lacks returns CUBLAS_STATUS_NOT_SUPPORTED (15).
 *
 * The symbol table comes from symbols.txt through build.sh, which writes shim_symbols.h as X(name) lines.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

/* Bind the oldest x86_64 versions, so the shim also loads on glibc < 2.34 (where dlopen lives in libdl). */
__asm__(".symver dlopen,dlopen@GLIBC_2.2.5");
__asm__(".symver dlsym,dlsym@GLIBC_2.2.5");
__asm__(".symver dlerror,dlerror@GLIBC_2.2.5");

#define KILN_STATUS_NOT_SUPPORTED 15

__attribute__((visibility("hidden"))) int kiln_shim_missing(void) {
    return KILN_STATUS_NOT_SUPPORTED;
}

/* One hidden pointer per symbol, initially the "missing" stub. */
#define X(name) __attribute__((visibility("hidden"))) void *kiln_ptr_##name = (void *) kiln_shim_missing;
#include "shim_symbols.h"
#undef X

/* One exported trampoline per symbol: jmp *kiln_ptr_<name>(%rip). */
#define X(name) __asm__(".text\n\t.globl " #name "\n\t.type " #name ", @function\n" #name ":\n\t" \
                        "jmp *kiln_ptr_" #name "(%rip)\n\t.size " #name ", .-" #name "\n");
#include "shim_symbols.h"
#undef X

static int kiln_shim_resolved = -1;
static int kiln_shim_unresolved = 0;
static char kiln_shim_target[4096];

__attribute__((constructor)) static void kiln_shim_init(void) {
    const char *target = getenv("KILN_CUBLAS_TARGET");
    if (target == NULL || target[0] == '\0') {
        target = "libcublas.so.13";
    }
    snprintf(kiln_shim_target, sizeof kiln_shim_target, "%s", target);
    void *h = dlopen(target, RTLD_NOW | RTLD_GLOBAL);
    if (h == NULL) {
        fprintf(stderr, "kiln cublas12 shim: cannot load %s: %s (every cuBLAS call will return NOT_SUPPORTED)\n",
                target, dlerror());
        return;
    }
    kiln_shim_resolved = 0;
#define X(name) { void *f = dlsym(h, #name); if (f != NULL) { kiln_ptr_##name = f; kiln_shim_resolved++; } \
                  else { kiln_shim_unresolved++; } }
#include "shim_symbols.h"
#undef X
}

/* For diagnostics: how many symbols were forwarded and to what (exported at the same version node). */
int kiln_cublas12_shim_resolved(void) { return kiln_shim_resolved; }
int kiln_cublas12_shim_unresolved(void) { return kiln_shim_unresolved; }
const char *kiln_cublas12_shim_target(void) { return kiln_shim_target; }
