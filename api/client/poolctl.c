/* placeholder */
#include <stdio.h>
int main(void) { puts("poolctl"); return 0; }
