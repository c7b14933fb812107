#include "gguf_cmd.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "config_source.h"
#include "inspect.h"
#include "rotary/error.h"
#include "rotary/gguf.h"
#include "rotary/gguf_rope.h"
#include "rotary/gguf_verify.h"
#include "rotary/verify.h"

namespace rotary::tools {
namespace {

bool ends_with_gguf(const std::string& argument) {
  constexpr std::string_view kSuffix = ".gguf";
  if (argument.size() < kSuffix.size()) return false;
  std::string tail = argument.substr(argument.size() - kSuffix.size());
  std::transform(tail.begin(), tail.end(), tail.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return tail == kSuffix;
}

bool starts_with_gguf_magic(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) return false;
  std::ifstream file(path, std::ios::binary);
  char magic[4] = {};
  return file.read(magic, sizeof magic) && std::string_view(magic, sizeof magic) == "GGUF";
}

void refuse_if_given(bool given, const std::string& option, const std::string& why) {
  if (given) throw Error(ErrorCode::kInvalidArgument, option, why);
}

// --context as gguf_rope takes it: absent means the GGUF's own context_length.
std::optional<int64_t> context_option(int64_t context) {
  if (context < 0) {
    throw Error(
        ErrorCode::kInvalidArgument, "--context",
        "expected a positive sequence length (llama.cpp's n_ctx), got " + std::to_string(context));
  }
  return context > 0 ? std::optional<int64_t>(context) : std::nullopt;
}

// The GGUF file and what llama.cpp rotates with, read once.
struct GgufFile {
  std::string path;
  GgufMetadata metadata;
  GgufRope rope;
};

GgufFile read_gguf_file(const std::string& path, int64_t context) {
  const std::optional<int64_t> n_ctx = context_option(context);
  GgufFile file{path, read_gguf(path), {}};
  file.rope = gguf_rope(file.metadata, n_ctx);
  return file;
}

std::string mode_in_words(const GgufFile& f) {
  const int64_t dim = f.rope.config.resolved_rotary_dim();
  return f.rope.rope_mode + ": " +
         (f.rope.rope_mode == "norm" ? "adjacent pairs " : "half-split pairs ") +
         verify::pairs_phrase(f.rope.config.layout, dim) +
         (f.rope.rope_mode == "mrope" || f.rope.rope_mode == "imrope"
              ? ", one position axis per section"
              : "");
}

// What the converter's Q/K row order means for the pairs.
std::string rows_in_words(const GgufFile& f) {
  if (!f.rope.qk_rows_permuted) {
    return "as in the original checkpoint (the converter does not reorder them for this "
           "architecture): llama.cpp rotates the checkpoint's own channels in " +
           f.rope.rope_mode + " mode";
  }
  return "reordered by convert_hf_to_gguf: the pairs llama.cpp rotates in " + f.rope.rope_mode +
         " mode are the pairs transformers rotates in the original checkpoint";
}

nlohmann::json gguf_json(const GgufFile& f) {
  return {{"path", f.path},
          {"architecture", f.metadata.architecture},
          {"rope_mode", f.rope.rope_mode},
          {"rope_mode_description", mode_in_words(f)},
          {"qk_rows_permuted", f.rope.qk_rows_permuted},
          {"qk_rows", rows_in_words(f)},
          {"notes", f.rope.notes}};
}

void print_gguf_facts(const GgufFile& f) {
  std::printf("%s (GGUF)\n", f.path.c_str());
  std::printf("  architecture       %s\n", f.metadata.architecture.c_str());
  std::printf("  llama.cpp mode     %s\n", mode_in_words(f).c_str());
  std::printf("  Q/K rows           %s\n", rows_in_words(f).c_str());
  for (const std::string& note : f.rope.notes) {
    std::printf("  note               %s\n", note.c_str());
  }
}

// One side of the comparison, in a line: "llama3, base 500000, half-split pairs (i, i+64), ...".
std::string describe_side(const RopeConfig& c, double attention_factor) {
  const int64_t dim = c.resolved_rotary_dim();
  char tail[160];
  std::snprintf(tail, sizeof tail, ", rotary_dim %lld of %lld, attention factor %.7g",
                static_cast<long long>(dim), static_cast<long long>(c.head_dim), attention_factor);
  char base[64];
  std::snprintf(base, sizeof base, ", base %.10g, ", c.rope_theta);
  return std::string(to_string(c.rope_type)) + base +
         (c.layout == Layout::kHalfSplit ? "half-split pairs " : "interleaved pairs ") +
         verify::pairs_phrase(c.layout, dim) + tail;
}

// The pair whose theta differs most between the two sides, relative to the larger of the two (as
// the theta finding states it, so that the line and the finding agree).
void print_theta_line(const GgufComparison& r) {
  const std::size_t n = std::min(r.theta_gguf.size(), r.theta_config.size());
  if (n == 0) return;
  double worst = 0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double scale =
        std::max({std::fabs(r.theta_config[i]), std::fabs(r.theta_gguf[i]), 1e-300});
    const double relative = std::fabs(r.theta_gguf[i] - r.theta_config[i]) / scale;
    if (relative > worst) worst = relative, at = i;
  }
  std::printf(
      "  θ                  %zu pairs, gguf θ_0 %.8g .. θ_%zu %.8g; largest relative difference "
      "%.2g at pair %zu\n",
      n, r.theta_gguf.front(), n - 1, r.theta_gguf[n - 1], worst, at);
}

constexpr std::array<verify::Severity, 3> kSeverities = {
    verify::Severity::kMismatch, verify::Severity::kWarning, verify::Severity::kNote};

std::size_t count(const GgufComparison& r, verify::Severity severity) {
  return static_cast<std::size_t>(
      std::count_if(r.findings.begin(), r.findings.end(),
                    [&](const verify::Finding& f) { return f.severity == severity; }));
}

// The marks of `rotary verify TABLE`'s report: x mismatch, ! warning, - note.
const char* mark(verify::Severity s) {
  return s == verify::Severity::kMismatch ? "x" : s == verify::Severity::kWarning ? "!" : "-";
}

void print_findings(const GgufComparison& r) {
  const std::size_t mismatches = count(r, verify::Severity::kMismatch);
  if (mismatches == 0) {
    std::printf("\nMATCH\n");
  } else {
    std::printf("\nMISMATCH (%zu)\n", mismatches);
  }
  for (const verify::Severity severity : kSeverities) {
    if (count(r, severity) == 0) continue;
    std::printf("  %s\n", severity == verify::Severity::kMismatch  ? "mismatches"
                          : severity == verify::Severity::kWarning ? "warnings"
                                                                   : "notes");
    for (const verify::Finding& f : r.findings) {
      if (f.severity != severity) continue;
      std::printf("    %s %s: %s\n", mark(severity), f.topic.c_str(), f.message.c_str());
    }
  }
}

void print_gguf_verification(const GgufFile& f, const LoadedConfig& loaded,
                             const GgufComparison& r) {
  std::printf("rotary verify: %s (GGUF, architecture %s, llama.cpp mode %s, Q/K rows %s)\n",
              f.path.c_str(), f.metadata.architecture.c_str(), f.rope.rope_mode.c_str(),
              f.rope.qk_rows_permuted ? "reordered by the converter" : "as in the checkpoint");
  std::printf("  config             %s: %s\n", loaded.label.c_str(),
              describe_side(loaded.config, r.attention_config).c_str());
  std::printf("  gguf               %s\n", describe_side(f.rope.config, r.attention_gguf).c_str());
  std::printf("  context            %lld\n", static_cast<long long>(r.context));
  print_theta_line(r);
  print_findings(r);
}

nlohmann::json side_json(const RopeConfig& c, double attention_factor) {
  return {{"rope_type", std::string(to_string(c.rope_type))},
          {"rope_theta", c.rope_theta},
          {"head_dim", c.head_dim},
          {"rotary_dim", c.resolved_rotary_dim()},
          {"layout", std::string(to_string(c.layout))},
          {"attention_factor", attention_factor}};
}

nlohmann::json verification_json(const GgufFile& f, const LoadedConfig& loaded,
                                 const GgufComparison& r) {
  nlohmann::json j;
  j["matches"] = r.match();
  j["gguf"] = gguf_json(f);
  j["gguf"]["rope"] = side_json(f.rope.config, r.attention_gguf);
  j["config"] = side_json(loaded.config, r.attention_config);
  j["config"]["label"] = loaded.label;
  j["config"]["source"] = loaded.source;
  j["context"] = r.context;
  j["theta_gguf"] = r.theta_gguf;
  j["theta_config"] = r.theta_config;
  nlohmann::json counts, findings = nlohmann::json::array();
  for (const verify::Severity severity : kSeverities) {
    counts[std::string(verify::to_string(severity))] = count(r, severity);
  }
  for (const verify::Finding& finding : r.findings) {
    findings.push_back({{"severity", std::string(verify::to_string(finding.severity))},
                        {"topic", finding.topic},
                        {"message", finding.message}});
  }
  j["counts"] = counts;
  j["findings"] = findings;
  return j;
}

// The factor tensor whose values the config's LongRoPE slots hold ("" when none): gguf_rope
// puts the one llama.cpp uses (rope_freqs, or Phi-3's long or short set for the context) in both.
std::string factor_tensor_in_use(const GgufFile& f) {
  const std::vector<double>& used = f.rope.config.short_factor;
  for (const char* name : {"rope_freqs", "rope_factors_long", "rope_factors_short"}) {
    const auto it = f.metadata.rope_tensors.find(name);
    if (it != f.metadata.rope_tensors.end() &&
        std::equal(it->second.begin(), it->second.end(), used.begin(), used.end())) {
      return name;
    }
  }
  return "";
}

// The per-pair rule names the LongRoPE slot ("short_factor 8"); for a GGUF file, name the tensor
// llama.cpp divides by instead ("rope_freqs 8"), which is what the user can look up in the file.
void name_factor_tensor(const GgufFile& f, Inspection& result) {
  const std::string tensor = factor_tensor_in_use(f);
  if (tensor.empty()) return;
  for (PairReport& pair : result.pairs) {
    for (const std::string slot : {"short_factor ", "long_factor "}) {
      if (pair.rule.starts_with(slot)) pair.rule = tensor + " " + pair.rule.substr(slot.size());
    }
  }
}

}  // namespace

bool is_gguf_argument(const std::string& argument) {
  return ends_with_gguf(argument) || starts_with_gguf_magic(argument);
}

int run_gguf_inspect(const GgufInspectRequest& request) {
  const std::string why = "applies to a config.json, not to a GGUF file";
  refuse_if_given(!request.layer_type.empty(), "--layer-type", why);
  refuse_if_given(request.vision, "--vision", why);
  const GgufFile file = read_gguf_file(request.path, request.context);
  const LoadedConfig loaded{file.rope.config, file.path + " (" + file.metadata.architecture + ")",
                            file.path + ", as llama.cpp reads it"};
  Inspection result = inspect(loaded, request.context);
  name_factor_tensor(file, result);
  if (request.json) {
    nlohmann::json j = to_json(result);
    j["gguf"] = gguf_json(file);
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    print_gguf_facts(file);
    std::printf("\n");
    print_inspection(result);
  }
  return 0;
}

int run_gguf_verify(const GgufVerifyRequest& request) {
  const std::string why = "applies to a cos/sin table, not to a GGUF file";
  refuse_if_given(!request.names.empty(), "--names", why);
  refuse_if_given(!request.precision.empty(), "--precision", why);
  context_option(request.context);
  const LoadedConfig loaded = load_config(request.config, request.layer_type);
  // Both sides at one context, as compare_gguf expects: --context, else the config's trained
  // context, else (0) the GGUF's own context_length, which is also gguf_rope's default.
  const int64_t context = request.context > 0
                              ? request.context
                              : std::max<int64_t>(loaded.config.max_position_embeddings, 0);
  const GgufFile file = read_gguf_file(request.path, context);
  const GgufComparison result =
      compare_gguf(file.rope, loaded.config, context, file.metadata.architecture);
  if (request.json) {
    std::printf("%s\n", verification_json(file, loaded, result).dump(2).c_str());
  } else {
    print_gguf_verification(file, loaded, result);
  }
  return result.match() ? 0 : 1;
}

}  // namespace rotary::tools
