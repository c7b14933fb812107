// The rotary command-line tool: inspect, plot, decay, export, verify, bench, demo, families,
// layers. `inspect` and `verify` also take a llama.cpp GGUF file (tools/gguf_cmd.h):
//   rotary inspect model.gguf [--context N] [--json]
//   rotary verify model.gguf --config CONFIG [--context N] [--json]
// Exit codes: 0 success, 1 a failure at run time (and for verify: the table or GGUF file
// does not match), 2 bad usage or bad input (one line on stderr naming the file, the field and what
// was expected).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "bench.h"
#include "builtin_configs_cmd.h"
#include "decay_cmd.h"
#include "demo.h"
#include "export.h"
#include "families_cmd.h"
#include "gguf_cmd.h"
#include "inspect.h"
#include "layers_cmd.h"
#include "plot.h"
#include "rotary/error.h"
#include "verify.h"

namespace {

using namespace rotary::tools;

// A subcommand and what runs when it is the one given. Each command keeps its options in storage
// its runner shares, filled in by the parse.
using Runner = std::function<int()>;
using Command = std::pair<CLI::App*, Runner>;

// The CONFIG argument most commands take, with the part of it to read.
struct ConfigOptions {
  std::string config;
  std::string layer_type;
  bool vision = false;
  LoadedConfig load() const { return load_config(config, layer_type, vision); }
};

std::shared_ptr<ConfigOptions> add_config_options(CLI::App* cmd) {
  auto o = std::make_shared<ConfigOptions>();
  cmd->add_option("CONFIG", o->config, "config.json path or built-in name")->required();
  cmd->add_option("--layer-type", o->layer_type,
                  "for configs with a RoPE per layer type, e.g. full_attention, sliding_attention");
  cmd->add_flag("--vision", o->vision,
                "the vision tower's 2D RoPE (vision_config) instead of the text model's");
  return o;
}

int print_json_or(const nlohmann::json& json, bool as_json, const std::function<void()>& print) {
  if (as_json) {
    std::printf("%s\n", json.dump(2).c_str());
  } else {
    print();
  }
  return 0;
}

Command add_demo(CLI::App& app) {
  return {app.add_subcommand("demo",
                             "Show a real model's RoPE (built-in Llama-3.1-8B): configuration, "
                             "frequency table, a rotation, the relative-position property and "
                             "angle precision"),
          [] { return run_demo(); }};
}

Command add_list(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "list", "List the built-in model configurations, and the stored ones rotary refuses");
  auto as_json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *as_json, "machine-readable output");
  return {cmd, [=] { return run_list(*as_json); }};
}

Command add_inspect(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "inspect",
      "Resolved RoPE parameters and a per-pair table, of a config or of a llama.cpp GGUF file "
      "(what llama.cpp rotates with)");
  auto config = add_config_options(cmd);
  cmd->get_option("CONFIG")->description("config.json path, built-in name or GGUF file");
  auto context = std::make_shared<int64_t>(0);
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("--context", *context,
                  "sequence length to inspect at (default: max_position_embeddings; for a GGUF "
                  "file, llama.cpp's n_ctx, default its context_length)");
  cmd->add_flag("--json", *as_json, "machine-readable output");
  return {cmd, [=] {
            if (is_gguf_argument(config->config)) {
              return run_gguf_inspect({.path = config->config,
                                       .context = *context,
                                       .json = *as_json,
                                       .layer_type = config->layer_type,
                                       .vision = config->vision});
            }
            const Inspection result = inspect(config->load(), *context);
            return print_json_or(to_json(result), *as_json, [&] { print_inspection(result); });
          }};
}

Command add_plot(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "plot", "Figures are drawn by the Python package: pip install 'rotary[plot]'");
  cmd->allow_extras();  // whatever was given, the answer is where plotting went
  return {cmd, [] { return refuse_plot(); }};
}

Command add_decay(CLI::App& app) {
  CLI::App* cmd =
      app.add_subcommand("decay", "CSV: RoFormer's long-term decay bound per relative distance");
  auto config = add_config_options(cmd);
  auto decay = std::make_shared<DecayRequest>();
  cmd->add_option("--max-distance", decay->max_distance,
                  "largest distance (default: 2 * max_position_embeddings, or 65536)")
      ->type_name("INT");
  cmd->add_option("--points-per-decade", decay->points_per_decade,
                  "log-spaced distances per decade (default: 50)")
      ->type_name("INT");
  cmd->add_option("--out", decay->out, "output .csv file (default: standard output)");
  return {cmd, [=] {
            write_decay(config->load(), *decay);
            return 0;
          }};
}

struct ExportOptions {
  ExportRequest request;
  std::string format = "safetensors", dtype = "f32", mode = "hf";
};

Command add_export(CLI::App& app) {
  CLI::App* cmd =
      app.add_subcommand("export", "cos/sin tables for positions [0, N) as npy or safetensors");
  auto config = add_config_options(cmd);
  auto o = std::make_shared<ExportOptions>();
  cmd->add_option("--positions", o->request.positions, "number of positions N")->required();
  cmd->add_option("--format", o->format, "npy or safetensors")
      ->check(CLI::IsMember({"npy", "safetensors"}));
  cmd->add_option("--dtype", o->dtype, "f32, f16 or bf16")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  cmd->add_option("--angle-mode", o->mode, "hf or exact")->check(CLI::IsMember({"hf", "exact"}));
  cmd->add_option("--out", o->request.out, "output file")->required();
  return {cmd, [=] {
            ExportRequest request = o->request;
            request.format = o->format == "npy" ? ExportFormat::kNpy : ExportFormat::kSafetensors;
            request.dtype = o->dtype == "f32"   ? rotary::DType::kF32
                            : o->dtype == "f16" ? rotary::DType::kF16
                                                : rotary::DType::kBF16;
            request.angle_mode =
                o->mode == "hf" ? rotary::AngleMode::kHf : rotary::AngleMode::kExact;
            request.progress = request.positions >= (int64_t{1} << 20) && isatty(fileno(stderr));
            export_tables(config->load(), request);
            return 0;
          }};
}

struct VerifyOptions {
  VerifyRequest request;
  ConfigOptions config;
  std::string precision;
  int64_t context = 0;
  bool json = false;
};

Command add_verify(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "verify",
      "Check cos/sin tables another engine exported (npy, safetensors), or the RoPE of a "
      "llama.cpp GGUF file, against a config: what differs, in words; exit 0 when they match, 1 "
      "when they do not");
  auto o = std::make_shared<VerifyOptions>();
  cmd->add_option("TABLE", o->request.table, "npy, safetensors or GGUF file")->required();
  cmd->add_option("--config", o->config.config, "config.json path or built-in name")->required();
  cmd->add_option("--layer-type", o->config.layer_type,
                  "for configs with a RoPE per layer type, e.g. full_attention");
  cmd->add_option("--names", o->request.names,
                  "tensors holding the table: COS,SIN or one TABLE (stacked (2, N, W) or "
                  "cos|sin concatenated); default: cos,sin, cos_cached,sin_cached, "
                  "cos_sin_cache");
  cmd->add_option("--precision", o->precision,
                  "cos/sin precision to accept: f32, f16 or bf16 (default: the table's dtype)")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  cmd->add_option("--context", o->context,
                  "GGUF only: the context to compare at, llama.cpp's n_ctx, which picks LongRoPE's "
                  "factors (default: the config's max_position_embeddings, else the GGUF's "
                  "context_length)");
  cmd->add_flag("--json", o->json, "machine-readable output");
  return {cmd, [=] {
            if (is_gguf_argument(o->request.table)) {
              return run_gguf_verify({.path = o->request.table,
                                      .config = o->config.config,
                                      .layer_type = o->config.layer_type,
                                      .context = o->context,
                                      .json = o->json,
                                      .names = o->request.names,
                                      .precision = o->precision});
            }
            if (o->context != 0) {
              throw rotary::Error(rotary::ErrorCode::kInvalidArgument, "--context",
                                  "applies to a GGUF file only (a table's positions are its rows)");
            }
            VerifyRequest request = o->request;
            request.precision = o->precision;
            const TableVerification result = verify_table(o->config.load(), request);
            print_json_or(to_json(result), o->json, [&] { print_verification(result); });
            return result.matches() ? 0 : 1;
          }};
}

Command add_bench(CLI::App& app) {
  CLI::App* cmd =
      app.add_subcommand("bench", "CPU benchmark: GB/s and % of the in-place and memcpy limits");
  auto bench = std::make_shared<BenchRequest>();
  cmd->add_option("--tokens", bench->tokens, "tokens per call")->check(CLI::PositiveNumber);
  cmd->add_option("--threads", bench->threads, "threads (0 = all)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--repeats", bench->repeats, "timed repeats")->check(CLI::PositiveNumber);
  return {cmd, [=] { return run_bench(*bench); }};
}

Command add_families(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "families",
      "The RoPE families of transformers and how rotary reads each (the family sweep's "
      "result): state, layout, model types, why refused or unchecked");
  auto families = std::make_shared<FamiliesRequest>();
  cmd->add_option("--state", families->state, "only the families in this state")
      ->check(CLI::IsMember(kFamilyStates));
  cmd->add_flag("--json", families->json, "machine-readable output");
  return {cmd, [=] { return run_families(*families); }};
}

Command add_layers(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "layers", "Which layers rotate and by which RoPE, as the model's class decides per layer");
  auto config = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("CONFIG", *config, "config.json path or built-in name")->required();
  cmd->add_flag("--json", *as_json, "machine-readable output");
  return {cmd, [=] { return run_layers(*config, *as_json); }};
}

// Bad input (rotary::Error) exits 2, a failure to write output 1, anything else 1.
int run_reporting_errors(const Runner& run) {
  try {
    return run();
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "rotary: rotary position embeddings (RoPE), faithful to Hugging Face transformers.\n"
      "CONFIG is a model's config.json or a built-in name (rotary list); inspect and verify also "
      "take a llama.cpp GGUF file."};
  // ROTARY_VERSION is project(rotary VERSION ...) in CMakeLists.txt, like the Python package's.
  app.set_version_flag("--version", "rotary " ROTARY_VERSION);
  app.require_subcommand(1);
  const std::vector<Command> commands = {
      add_demo(app),   add_list(app),   add_inspect(app), add_plot(app),     add_decay(app),
      add_export(app), add_verify(app), add_bench(app),   add_families(app), add_layers(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  for (const auto& [cmd, run] : commands) {
    if (cmd->parsed()) return run_reporting_errors(run);
  }
  return 2;
}
