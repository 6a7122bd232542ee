/* Test plugin: its entry point segfaults, as a broken plugin's would. */
#include <poolhost/module.h>

#include <stddef.h>

PH_EXPORT const ph_module *ph_module_entry(void) {
    volatile int *nowhere = NULL;
    *nowhere = 1;
    return NULL;
}
