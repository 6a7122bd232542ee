/*
 * System call names by architecture and number (syscall_name.h), from the
 * tables gen_syscall_names.c generates.
 */
#include "syscall_name.h"

const char *pool_syscall_name(uint32_t arch, int nr) {
    for (size_t i = 0; i < pool__nsyscall_tables; i++) {
        const pool__syscall_table *t = &pool__syscall_tables[i];
        if (t->arch == arch)
            return nr >= 0 && (size_t)nr < t->n ? t->names[nr] : NULL;
    }
    return NULL;
}
