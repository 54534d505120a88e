#define THRICE(x) ((x) * 3)
