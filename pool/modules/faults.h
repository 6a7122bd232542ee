/*
 * Functions of the built-in `faults` module that live outside
 * mod_faults.c (which holds the module's table): a ph_fn each.
 */
#ifndef POOL_FAULTS_H
#define POOL_FAULTS_H

#include <poolhost/module.h>

/* syscall {name}: tries one action the sandbox forbids (faults_syscall.c). */
int pool__faults_syscall(ph_ctx *ctx, const json_t *args, json_t **result);

#endif
