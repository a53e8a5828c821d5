// `ferry`: every Ferry process and command (DESIGN.md §7). Wiring only; see src/cli.
#include "cli/cli.h"

int main(int argc, char** argv) { return ferry::cli::Main(argc, argv); }
