/* placeholder until the front end lands: dispatches the pool host. */
#include "pool/host.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], POOL_HOST_FLAG) == 0)
        return pool_host_main(argc, argv);
    puts("poolhost");
    return 0;
}
