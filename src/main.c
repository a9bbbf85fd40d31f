#include "config.h"
int main(void) { return 1; } /* replaced by the daemon shortly */
