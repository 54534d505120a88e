int broken(void) { return 2 }
