// Placeholder entry point; replaced by the real CLI.
#include <cstdio>
int main() { std::puts("embeval"); return 0; }
