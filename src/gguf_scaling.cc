// The frequency scaling llama.cpp applies from a GGUF file (llama.cpp at commit 0c1e57098).
//
// llama.cpp hands ggml_rope_ext a base, freq_scale = 1 / rope.scaling.factor, an optional factor
// tensor (theta_i is divided by factor_i), YaRN's ext_factor/betas/original context, and an
// attn_factor that multiplies cos and sin. rotary expresses the same with its own rope types:
// default and linear, yarn (ext_factor 1, truncated ramp ends as ggml's floor/ceil), and longrope
// with one list in both slots for the per-pair divisors (a factor tensor, times the linear
// factor) and an explicit attention factor.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>

#include "gguf_architectures.h"
#include "gguf_key_checks.h"
#include "gguf_scaling.h"
#include "rotary/error.h"

namespace rotary::detail {
namespace {

// What the file says about scaling, with llama.cpp's defaults (load_hparams).
struct Scaling {
  int64_t train_context = 0;  // context_length (n_ctx_train)
  int64_t original = 0;       // n_ctx_orig_yarn
  int64_t context = 0;        // the context llama.cpp runs with
  std::string type;
  double factor = 1;       // 1 / freq_scale
  double attn_factor = 1;  // rope.scaling.attn_factor
};

Scaling read_scaling(const GgufKeys& keys, std::optional<int64_t> context_length,
                     std::vector<std::string>& notes) {
  Scaling s;
  s.train_context = keys.integer("context_length").value_or(0);
  if (s.train_context <= 0) invalid_gguf(keys.name("context_length"), "required, > 0");
  s.context = context_length.value_or(s.train_context);
  if (s.context <= 0) {
    throw Error(ErrorCode::kInvalidArgument, "context_length",
                "expected > 0, got " + std::to_string(s.context));
  }
  s.original = keys.integer("rope.scaling.original_context_length").value_or(0);
  if (s.original < 0) invalid_gguf(keys.name("rope.scaling.original_context_length"), "< 0");
  if (s.original == 0) s.original = s.train_context;
  const std::optional<std::string> type = keys.text("rope.scaling.type");
  s.type = type.value_or("linear");
  if (!type) notes.push_back("no rope.scaling.type: llama.cpp reads it as 'linear'");
  if (!among(s.type, {"none", "linear", "yarn", "longrope"})) {
    invalid_gguf(keys.name("rope.scaling.type"),
                 "expected none, linear, yarn or longrope (llama.cpp stops on another), got '" +
                     s.type + "'");
  }
  // A factor of 0 or none means 1; the legacy key is the fallback.
  const char* factor_key =
      keys.has("rope.scaling.factor") ? "rope.scaling.factor" : "rope.scale_linear";
  const double factor = keys.number(factor_key).value_or(0);
  if (!std::isfinite(factor) || factor < 0) {
    invalid_gguf(keys.name(factor_key), "expected a finite number >= 0, got " + show(factor));
  }
  s.factor = factor == 0 ? 1.0 : factor;
  if (factor != 0 && std::string_view(factor_key) == "rope.scale_linear") {
    notes.push_back("the factor comes from the legacy key rope.scale_linear");
  }
  if (s.type == "none" && s.factor != 1) {
    notes.push_back("rope.scaling.type none: llama.cpp ignores the factor " + show(s.factor));
    s.factor = 1;
  }
  s.attn_factor = keys.positive("rope.scaling.attn_factor").value_or(1.0);
  return s;
}

// A factor tensor llama.cpp divides theta by: its GGUF name and its entries.
struct Divisors {
  std::string name;
  const std::vector<float>* values = nullptr;  // nullptr: none
};

// The divisors llama_model::get_rope_factors passes for a context of s.context positions, after
// checking every RoPE tensor the file holds.
Divisors factor_tensor(const GgufMetadata& metadata, const Scaling& s, int64_t rotary_dim,
                       std::vector<std::string>& notes) {
  for (const auto& [name, values] : metadata.rope_tensors) {
    if (!among(name, {"rope_freqs", "rope_factors_long", "rope_factors_short"})) {
      invalid_gguf(name, "a RoPE tensor rotary does not know (not supported yet)");
    }
    if (static_cast<int64_t>(values.size()) != rotary_dim / 2) {
      invalid_gguf(name, "expected rope.dimension_count / 2 = " + std::to_string(rotary_dim / 2) +
                             " entries, got " + std::to_string(values.size()));
    }
    for (const float v : values) {
      if (!(std::isfinite(v) && v > 0)) {
        invalid_gguf(
            name, "expected finite entries > 0 (llama.cpp divides theta by them), got " + show(v));
      }
    }
  }
  const auto find = [&](const char* name) {
    const auto it = metadata.rope_tensors.find(name);
    return it == metadata.rope_tensors.end() ? nullptr : &it->second;
  };
  if (const auto* freqs = find("rope_freqs")) {
    notes.push_back(
        "rope_freqs: llama.cpp divides theta_i by its entry i (Llama 3's smoothing "
        "and kin); expressed as longrope with it as both factor lists");
    return {"rope_freqs", freqs};
  }
  const bool long_set = s.context > s.original;
  const char* chosen = long_set ? "rope_factors_long" : "rope_factors_short";
  const auto* values = find(chosen);
  if (find("rope_factors_long") || find("rope_factors_short")) {
    notes.push_back(
        std::string("LongRoPE: llama.cpp uses ") + chosen + " for a context of " +
        std::to_string(s.context) + (long_set ? " > " : " <= ") + "the original " +
        std::to_string(s.original) +
        " at every position (llama_model::get_rope_factors); transformers picks per call by the "
        "sequence length" +
        (values ? "" : "; the file has no such tensor, so llama.cpp divides by nothing"));
  }
  return {chosen, values};
}

// YaRN's m-scale, 1 + 0.1 m ln(s) past s = 1.
double yarn_mscale(double scale, double m) {
  return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0;
}

// The factor llama.cpp's YaRN multiplies cos and sin by, rope.scaling.attn_factor aside: the
// llama_context constructor sets yarn_attn_factor and divides it by 1 + 0.1 ln(factor), which
// ggml's rope_yarn multiplies back in.
double yarn_cos_sin_scale(std::string_view arch, const GgufKeys& keys, double factor,
                          std::vector<std::string>& notes) {
  float log_mul = 0;
  if (const auto value = keys.number("rope.scaling.yarn_log_multiplier"); value && *value != 0) {
    if (divides_yarn_log_mul(arch)) {
      log_mul = static_cast<float>(*value) / 0.1f;  // as the loader does, in float
    } else if (arch == "mistral3") {
      log_mul = static_cast<float>(*value);
    }
  }
  if (log_mul == 0) return yarn_mscale(factor, 1);
  // llama.cpp takes mscale as 1, except for deepseek2, where it assumes mscale == mscale_all_dim.
  const float mscale = arch == "deepseek2" && log_mul != 1.0f ? log_mul : 1.0f;
  notes.push_back("rope.scaling.yarn_log_multiplier: mscale_all_dim = " + show(log_mul) +
                  "; llama.cpp assumes mscale = " + show(mscale) +
                  " (it never reads the config's mscale), so cos/sin are scaled by "
                  "mscale(factor, mscale) / mscale(factor, mscale_all_dim)");
  return yarn_mscale(factor, mscale) / yarn_mscale(factor, log_mul);
}

void set_yarn(RopeConfig& c, std::string_view arch, const GgufKeys& keys, const Scaling& s,
              std::vector<std::string>& notes) {
  if (s.factor < 1) {
    invalid_gguf(keys.name("rope.scaling.factor"),
                 "expected >= 1 for yarn, got " + show(s.factor) + "; not supported");
  }
  c.rope_type = RopeType::kYarn;
  c.factor = s.factor;
  c.original_max_position_embeddings = s.original;
  if (!keys.integer("rope.scaling.original_context_length").value_or(0)) {
    notes.push_back(
        "yarn without rope.scaling.original_context_length: llama.cpp takes "
        "context_length (" +
        std::to_string(s.original) + ") as the original context");
  }
  c.truncate = true;  // ggml floors and ceils the ramp's ends (ggml_rope_yarn_corr_dims)
  c.beta_fast = 32.0;
  c.beta_slow = 1.0;
  if (reads_yarn_betas(arch)) {
    c.beta_fast = keys.positive("rope.scaling.yarn_beta_fast").value_or(32.0);
    c.beta_slow = keys.positive("rope.scaling.yarn_beta_slow").value_or(1.0);
    if (*c.beta_fast < *c.beta_slow) {
      invalid_gguf(
          keys.name("rope.scaling.yarn_beta_fast"),
          "expected >= yarn_beta_slow, got " + show(*c.beta_fast) + " < " + show(*c.beta_slow));
    }
  }
  if (reads_yarn_ext_and_attn(arch)) {
    if (keys.number("rope.scaling.yarn_ext_factor").value_or(1) != 1) {
      invalid_gguf(keys.name("rope.scaling.yarn_ext_factor"),
                   "a YaRN blend other than 1 is not supported yet");
    }
    if (keys.has("rope.scaling.yarn_attn_factor")) {
      notes.push_back(keys.name("rope.scaling.yarn_attn_factor") +
                      ": llama.cpp replaces it with YaRN's own scale when it blends");
    }
  }
  c.attention_factor = yarn_cos_sin_scale(arch, keys, s.factor, notes) * s.attn_factor;
  notes.push_back("yarn: cos/sin scaled by " + show(*c.attention_factor) +
                  " (0.1 ln(factor) + 1 or the DeepSeek ratio, times rope.scaling.attn_factor "
                  "= " +
                  show(s.attn_factor) +
                  "); transformers uses the config's attention_factor instead where it has one");
  if (among(arch, {"deepseek2", "deepseek2-ocr", "deepseek32", "glm-dsa", "mistral4"})) {
    notes.push_back(
        "llama.cpp also multiplies the attention scale (kq_scale) by the square of "
        "YaRN's m-scale; that is the softmax scale, not the rotation");
  }
}

// No YaRN blend: theta_i * (1 / factor) / tensor_i, cos and sin times the attention scale.
void set_plain(RopeConfig& c, std::string_view arch, const GgufKeys& keys, const Scaling& s,
               const std::vector<float>* divisors, std::vector<std::string>& notes) {
  if (keys.has("rope.scaling.yarn_log_multiplier") && reads_yarn_log_mul(arch)) {
    notes.push_back(keys.name("rope.scaling.yarn_log_multiplier") +
                    ": used by llama.cpp only with rope.scaling.type yarn");
  }
  double attention = s.attn_factor;
  if (reads_yarn_ext_and_attn(arch)) {
    if (keys.number("rope.scaling.yarn_ext_factor").value_or(0) != 0) {
      invalid_gguf(keys.name("rope.scaling.yarn_ext_factor"),
                   "a YaRN blend without rope.scaling.type yarn is not supported yet");
    }
    attention *= keys.positive("rope.scaling.yarn_attn_factor").value_or(1.0);
  }
  if (s.type == "longrope" && !divisors) {
    notes.push_back(
        "rope.scaling.type longrope without a factor tensor: llama.cpp applies no "
        "per-pair factors");
  }
  if (divisors || attention != 1) {
    c.rope_type = RopeType::kLongRope;
    const std::size_t pairs = static_cast<std::size_t>(c.resolved_rotary_dim() / 2);
    c.short_factor.assign(pairs, s.factor);
    for (std::size_t i = 0; divisors && i < pairs; ++i) c.short_factor[i] *= (*divisors)[i];
    c.long_factor = c.short_factor;
    c.factor = 1.0;
    c.original_max_position_embeddings = s.train_context;
    c.attention_factor = attention;
    if (s.factor != 1) {
      notes.push_back("the linear factor " + show(s.factor) +
                      " is folded into the per-pair factors");
    }
    if (attention != 1) {
      notes.push_back("cos/sin scaled by " + show(attention) + " (rope.scaling.attn_factor)");
    }
  } else if (s.factor == 1) {
    c.rope_type = RopeType::kDefault;
  } else if (s.factor > 1) {
    c.rope_type = RopeType::kLinear;
    c.factor = s.factor;
  } else {
    invalid_gguf(keys.name("rope.scaling.factor"),
                 "a factor below 1 (faster rotation) is not supported, got " + show(s.factor));
  }
}

}  // namespace

void set_scaling(RopeConfig& c, const GgufMetadata& metadata, const GgufKeys& keys,
                 int64_t rotary_dim, std::optional<int64_t> context_length,
                 std::vector<std::string>& notes) {
  const std::string_view arch = metadata.architecture;
  const std::optional<double> base = keys.number("rope.freq_base");
  c.rope_theta = base.value_or(10000.0);
  if (!base) notes.push_back("no rope.freq_base: llama.cpp uses 10000");
  if (!(std::isfinite(c.rope_theta) && c.rope_theta > 1)) {
    invalid_gguf(keys.name("rope.freq_base"),
                 "expected a finite number > 1, got " + show(c.rope_theta));
  }
  const Scaling s = read_scaling(keys, context_length, notes);
  c.max_position_embeddings = s.train_context;
  const Divisors divisors = factor_tensor(metadata, s, rotary_dim, notes);
  check_other_rope_keys(metadata, keys, notes);
  check_sliding_window(keys, arch, c, s.type == "none" ? 1.0 : s.factor, notes);
  if (s.type == "yarn") {
    if (divisors.values) {
      invalid_gguf(divisors.name,
                   "YaRN together with a factor tensor: rotary's yarn has no per-pair "
                   "divisors; not supported yet");
    }
    set_yarn(c, arch, keys, s, notes);
  } else {
    set_plain(c, arch, keys, s, divisors.values, notes);
  }
}

}  // namespace rotary::detail
