/*
 * System call names, for crash records: a worker that makes a system call
 * the host's sandbox refuses dies of SIGSYS, and the record names the call.
 * A static table generated at build time from libseccomp's
 * (gen_syscall_names.c), so that a signal handler can read it.
 */
#ifndef POOL_SYSCALL_NAME_H
#define POOL_SYSCALL_NAME_H

#include <stddef.h>
#include <stdint.h>

/* The name of system call nr of the audit architecture arch
 * (AUDIT_ARCH_X86_64, AUDIT_ARCH_I386 or AUDIT_ARCH_AARCH64), or NULL when
 * unknown. Async-signal-safe. */
const char *pool_syscall_name(uint32_t arch, int nr);

/* The generated tables behind pool_syscall_name. */
typedef struct pool__syscall_table {
    uint32_t arch;
    const char *const *names; /* by number; NULL where there is none */
    size_t n;
} pool__syscall_table;

extern const pool__syscall_table pool__syscall_tables[];
extern const size_t pool__nsyscall_tables;

#endif
