/* placeholder */
#include <stdio.h>
int main(void) { puts("poolhost"); return 0; }
