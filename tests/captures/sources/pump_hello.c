#include "pump_hello.h"
int thrice(int x) { return THRICE(x); }
