// The rotary command-line tool.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "demo.h"
#include "rotary/error.h"

int main(int argc, char** argv) {
  CLI::App app{"rotary: rotary position embeddings (RoPE), faithful to Hugging Face transformers"};
  app.require_subcommand(1);
  CLI::App* demo = app.add_subcommand(
      "demo", "Show a real model's RoPE: configuration, frequency table, a rotation, the "
              "relative-position property and angle precision (no download needed)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    if (demo->parsed()) return rotary::tools::run_demo();
  } catch (const rotary::Error& e) {
    std::fprintf(stderr, "rotary: %s\n", e.what());
    return 2;
  }
  return 1;
}
