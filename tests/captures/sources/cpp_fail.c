#include "missing_header.h"
int g(void) { return 1; }
