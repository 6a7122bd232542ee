/* Test plugin: its entry point never returns. */
#include <poolhost/module.h>

#include <unistd.h>

PH_EXPORT const ph_module *ph_module_entry(void) {
    for (;;)
        pause();
}
