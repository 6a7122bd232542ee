/* Test plugin: its entry point dies of SIGSEGV, as a broken plugin's
 * would. (Raised rather than a wild store, which a sanitizer build would
 * report and stop on before the signal.) */
#include <poolhost/module.h>

#include <signal.h>
#include <stddef.h>

PH_EXPORT const ph_module *ph_module_entry(void) {
    raise(SIGSEGV);
    return NULL;
}
