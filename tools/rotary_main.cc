// The rotary command-line tool: inspect, plot, decay, export, verify, bench, demo, families,
// layers. Exit codes: 0 success, 1 a failure at run time (and for verify: the table does not
// match), 2 bad usage or bad input (one line on stderr naming the file, the field and what was
// expected).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "bench.h"
#include "builtin_configs.h"
#include "decay_cmd.h"
#include "demo.h"
#include "export.h"
#include "families_cmd.h"
#include "inspect.h"
#include "layers_cmd.h"
#include "plot.h"
#include "rotary/error.h"
#include "verify.h"

int main(int argc, char** argv) {
  using namespace rotary::tools;
  CLI::App app{
      "rotary: rotary position embeddings (RoPE), faithful to Hugging Face transformers.\n"
      "CONFIG is a model's config.json or a built-in name (rotary list)."};
  app.require_subcommand(1);

  CLI::App* demo = app.add_subcommand(
      "demo",
      "Show a real model's RoPE (built-in Llama-3.1-8B): configuration, frequency table, a "
      "rotation, the relative-position property and angle precision");
  CLI::App* list = app.add_subcommand("list", "List the built-in model configurations");

  std::string config_arg, layer_type;
  bool vision = false;
  const auto add_config = [&](CLI::App* cmd) {
    cmd->add_option("CONFIG", config_arg, "config.json path or built-in name")->required();
    cmd->add_option(
        "--layer-type", layer_type,
        "for configs with a RoPE per layer type, e.g. full_attention, sliding_attention");
    cmd->add_flag("--vision", vision,
                  "the vision tower's 2D RoPE (vision_config) instead of the text model's");
  };

  CLI::App* inspect_cmd =
      app.add_subcommand("inspect", "Resolved RoPE parameters and a per-pair table");
  add_config(inspect_cmd);
  int64_t context = 0;
  bool as_json = false;
  inspect_cmd->add_option("--context", context,
                          "sequence length to inspect at (default: max_position_embeddings)");
  inspect_cmd->add_flag("--json", as_json, "machine-readable output");

  CLI::App* plot_cmd =
      app.add_subcommand("plot", "SVG: wavelength per pair before/after scaling, long-term decay");
  add_config(plot_cmd);
  std::string out;
  plot_cmd->add_option("--out", out, "output .svg file")->required();

  CLI::App* decay_cmd =
      app.add_subcommand("decay", "CSV: RoFormer's long-term decay bound per relative distance");
  add_config(decay_cmd);
  DecayRequest decay;
  decay_cmd
      ->add_option("--max-distance", decay.max_distance,
                   "largest distance (default: 2 * max_position_embeddings, or 65536)")
      ->type_name("INT");
  decay_cmd
      ->add_option("--points-per-decade", decay.points_per_decade,
                   "log-spaced distances per decade (default: 50)")
      ->type_name("INT");
  decay_cmd->add_option("--out", decay.out, "output .csv file (default: standard output)");

  CLI::App* export_cmd =
      app.add_subcommand("export", "cos/sin tables for positions [0, N) as npy or safetensors");
  add_config(export_cmd);
  ExportRequest request;
  std::string format = "safetensors", dtype = "f32", mode = "hf";
  export_cmd->add_option("--positions", request.positions, "number of positions N")->required();
  export_cmd->add_option("--format", format, "npy or safetensors")
      ->check(CLI::IsMember({"npy", "safetensors"}));
  export_cmd->add_option("--dtype", dtype, "f32, f16 or bf16")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  export_cmd->add_option("--angle-mode", mode, "hf or exact")
      ->check(CLI::IsMember({"hf", "exact"}));
  export_cmd->add_option("--out", request.out, "output file")->required();

  CLI::App* verify_cmd = app.add_subcommand(
      "verify",
      "Check cos/sin tables another engine exported (npy, safetensors) against a config: what "
      "differs, in words; exit 0 when they match, 1 when they do not");
  VerifyRequest verify_request;
  std::string precision;
  bool verify_json = false;
  verify_cmd->add_option("TABLE", verify_request.table, "npy or safetensors file")->required();
  verify_cmd->add_option("--config", config_arg, "config.json path or built-in name")->required();
  verify_cmd->add_option("--layer-type", layer_type,
                         "for configs with a RoPE per layer type, e.g. full_attention");
  verify_cmd->add_option("--names", verify_request.names,
                         "tensors holding the table: COS,SIN or one TABLE (stacked (2, N, W) or "
                         "cos|sin concatenated); default: cos,sin, cos_cached,sin_cached, "
                         "cos_sin_cache");
  verify_cmd
      ->add_option("--precision", precision,
                   "cos/sin precision to accept: f32, f16 or bf16 (default: the table's dtype)")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  verify_cmd->add_flag("--json", verify_json, "machine-readable output");

  CLI::App* bench_cmd =
      app.add_subcommand("bench", "CPU benchmark: GB/s and % of the in-place and memcpy limits");
  BenchRequest bench;
  bench_cmd->add_option("--tokens", bench.tokens, "tokens per call")->check(CLI::PositiveNumber);
  bench_cmd->add_option("--threads", bench.threads, "threads (0 = all)")
      ->check(CLI::NonNegativeNumber);
  bench_cmd->add_option("--repeats", bench.repeats, "timed repeats")->check(CLI::PositiveNumber);

  CLI::App* families_cmd = app.add_subcommand(
      "families",
      "The RoPE families of transformers and how rotary reads each (the family sweep's "
      "result): state, layout, model types, why refused or unchecked");
  FamiliesRequest families;
  families_cmd->add_option("--state", families.state, "only the families in this state")
      ->check(CLI::IsMember(kFamilyStates));
  families_cmd->add_flag("--json", families.json, "machine-readable output");

  CLI::App* layers_cmd = app.add_subcommand(
      "layers", "Which layers rotate and by which RoPE, as the model's class decides per layer");
  std::string layers_config;
  bool layers_json = false;
  layers_cmd->add_option("CONFIG", layers_config, "config.json path or built-in name")->required();
  layers_cmd->add_flag("--json", layers_json, "machine-readable output");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  try {
    if (demo->parsed()) return run_demo();
    if (list->parsed()) {
      for (const BuiltinConfig& c : builtin_configs())
        std::printf("%s\n", std::string(c.name).c_str());
      return 0;
    }
    if (bench_cmd->parsed()) return run_bench(bench);
    if (families_cmd->parsed()) return run_families(families);
    if (layers_cmd->parsed()) return run_layers(layers_config, layers_json);
    const LoadedConfig loaded = load_config(config_arg, layer_type, vision);
    if (verify_cmd->parsed()) {
      verify_request.precision = precision;
      const TableVerification result = verify_table(loaded, verify_request);
      if (verify_json) {
        std::printf("%s\n", to_json(result).dump(2).c_str());
      } else {
        print_verification(result);
      }
      return result.matches() ? 0 : 1;
    }
    if (inspect_cmd->parsed()) {
      const Inspection result = inspect(loaded, context);
      if (as_json) {
        std::printf("%s\n", to_json(result).dump(2).c_str());
      } else {
        print_inspection(result);
      }
    } else if (plot_cmd->parsed()) {
      write_plot(loaded, out);
    } else if (decay_cmd->parsed()) {
      write_decay(loaded, decay);
    } else if (export_cmd->parsed()) {
      request.format = format == "npy" ? ExportFormat::kNpy : ExportFormat::kSafetensors;
      request.dtype = dtype == "f32"   ? rotary::DType::kF32
                      : dtype == "f16" ? rotary::DType::kF16
                                       : rotary::DType::kBF16;
      request.angle_mode = mode == "hf" ? rotary::AngleMode::kHf : rotary::AngleMode::kExact;
      request.progress = request.positions >= (int64_t{1} << 20) && isatty(fileno(stderr));
      export_tables(loaded, request);
    }
    return 0;
  } catch (const rotary::Error& e) {
    std::fprintf(stderr, "rotary: %s\n", e.what());
    return e.code() == rotary::ErrorCode::kIoError &&
                   e.message().find("writing") != std::string::npos
               ? 1
               : 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rotary: %s\n", e.what());
    return 1;
  }
}
