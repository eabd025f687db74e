// perceiver: command-line entry point; dispatches to the subcommands.
#include <cstdio>

int main(int argc, char** argv) {
  std::fprintf(stderr, "perceiver: subcommands are being built\n");
  return 2;
}
