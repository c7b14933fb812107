// RopeConfig: names, resolution of derived sizes, validation.
#include "rotary/config.h"

#include <cmath>
#include <string>

#include "rotary/error.h"
#include "rotary/positions.h"

namespace rotary {
namespace {

[[noreturn]] void config_error(const std::string& field, const std::string& message) {
  throw Error(ErrorCode::kInvalidConfig, field, message);
}

void require_finite_positive(const std::optional<double>& value, const char* field, RopeType type) {
  if (!value) {
    config_error(field, "required for rope_type '" + std::string(to_string(type)) + "'");
  }
  if (!std::isfinite(*value) || *value <= 0) {
    config_error(field, "expected a finite number > 0, got " + std::to_string(*value));
  }
}

// The sections must give every pair exactly one axis, and each axis exactly its section's count.
void validate_sections(const RopeConfig& c, int64_t dim) {
  if (c.mrope_section.empty()) return;
  if (c.rope_type == RopeType::kAxial) {
    config_error("mrope_section",
                 "not used by axial RoPE (rows and columns take rotary_dim / 4 "
                 "pairs each)");
  }
  const auto n = static_cast<int64_t>(c.mrope_section.size());
  if (n > Positions::kMaxAxes) {
    config_error("mrope_section", "expected at most " + std::to_string(Positions::kMaxAxes) +
                                      " axes, got " + std::to_string(n));
  }
  int64_t total = 0;
  for (int64_t s : c.mrope_section) {
    if (s < 0) config_error("mrope_section", "expected sections >= 0, got " + std::to_string(s));
    total += s;
  }
  if (total != dim / 2) {
    config_error("mrope_section",
                 "the sections sum to " + std::to_string(total) +
                     " pairs; expected rotary_dim / 2 = " + std::to_string(dim / 2));
  }
  if (c.mrope_interleaved) {
    // Interleaved, axis a >= 1 owns the pairs j = a, a + n, ... below n * section[a]; they must all
    // exist.
    for (int64_t a = 1; a < n; ++a) {
      if (c.mrope_section[a] > 0 && a + n * (c.mrope_section[a] - 1) >= dim / 2) {
        config_error("mrope_section", "interleaved section " + std::to_string(a) + " (" +
                                          std::to_string(c.mrope_section[a]) +
                                          " pairs) runs past the last pair");
      }
    }
  }
}

}  // namespace

std::string_view to_string(RopeType type) {
  switch (type) {
    case RopeType::kDefault:
      return "default";
    case RopeType::kLinear:
      return "linear";
    case RopeType::kDynamic:
      return "dynamic";
    case RopeType::kYarn:
      return "yarn";
    case RopeType::kLongRope:
      return "longrope";
    case RopeType::kLlama3:
      return "llama3";
    case RopeType::kProportional:
      return "proportional";
    case RopeType::kAxial:
      return "axial";
  }
  return "?";
}

std::string_view to_string(AxialFrequencies frequencies) {
  return frequencies == AxialFrequencies::kShared ? "shared" : "alternating";
}

std::string_view to_string(Layout layout) {
  return layout == Layout::kHalfSplit ? "half_split" : "interleaved";
}

RopeType parse_rope_type(std::string_view name) {
  static constexpr RopeType kAll[] = {
      RopeType::kDefault,  RopeType::kLinear, RopeType::kDynamic,      RopeType::kYarn,
      RopeType::kLongRope, RopeType::kLlama3, RopeType::kProportional, RopeType::kAxial};
  for (RopeType type : kAll) {
    if (name == to_string(type)) return type;
  }
  // Phi-3's first configs called LongRoPE "su"; transformers accepts it as longrope.
  if (name == "su") return RopeType::kLongRope;
  throw Error(ErrorCode::kInvalidConfig, "rope_type",
              "unknown value '" + std::string(name) +
                  "'; expected one of default, linear, dynamic, yarn, longrope (su), llama3, "
                  "proportional, axial");
}

int64_t RopeConfig::resolved_rotary_dim() const {
  if (head_dim <= 0)
    config_error("head_dim", "expected a positive integer, got " + std::to_string(head_dim));
  if (rope_type == RopeType::kProportional) {
    // transformers' "proportional" always produces head_dim/2 frequencies (the unrotated ones are
    // 0).
    if (head_dim % 2 != 0) config_error("head_dim", "proportional RoPE needs an even head_dim");
    return head_dim;
  }
  int64_t dim;
  if (rotary_dim) {
    dim = *rotary_dim;
    if (dim <= 0 || dim > head_dim) {
      config_error("rotary_dim", "expected 0 < rotary_dim <= head_dim (" +
                                     std::to_string(head_dim) + "), got " + std::to_string(dim));
    }
  } else {
    if (!std::isfinite(partial_rotary_factor) || partial_rotary_factor <= 0 ||
        partial_rotary_factor > 1) {
      config_error("partial_rotary_factor",
                   "expected a number in (0, 1], got " + std::to_string(partial_rotary_factor));
    }
    // int(head_dim * partial_rotary_factor): a double product truncated, as transformers does.
    dim = static_cast<int64_t>(static_cast<double>(head_dim) * partial_rotary_factor);
    if (dim <= 0) {
      config_error("partial_rotary_factor", "head_dim * partial_rotary_factor rounds down to 0");
    }
  }
  if (dim % 2 != 0) {
    config_error(
        rotary_dim ? "rotary_dim" : "partial_rotary_factor",
        "the rotary dimension must be even (pairs of channels rotate), got " + std::to_string(dim));
  }
  return dim;
}

int64_t RopeConfig::resolved_original_max_position_embeddings() const {
  return original_max_position_embeddings.value_or(max_position_embeddings);
}

void RopeConfig::validate() const {
  const int64_t dim = resolved_rotary_dim();
  validate_sections(*this, dim);
  if (!std::isfinite(rope_theta) || rope_theta <= 1.0) {
    config_error("rope_theta", "expected a finite base > 1, got " + std::to_string(rope_theta));
  }
  if (max_position_embeddings < 0) {
    config_error("max_position_embeddings",
                 "expected >= 0, got " + std::to_string(max_position_embeddings));
  }
  if (original_max_position_embeddings && *original_max_position_embeddings <= 0) {
    config_error(
        "original_max_position_embeddings",
        "expected a positive integer, got " + std::to_string(*original_max_position_embeddings));
  }
  if (attention_factor && (!std::isfinite(*attention_factor) || *attention_factor <= 0)) {
    config_error("attention_factor", "expected a finite number > 0");
  }
  const auto require_context = [&](const char* why) {
    if (resolved_original_max_position_embeddings() <= 0) {
      config_error("original_max_position_embeddings",
                   std::string("required (or max_position_embeddings) for ") + why);
    }
  };
  switch (rope_type) {
    case RopeType::kDefault:
      break;
    case RopeType::kLinear:
      require_finite_positive(factor, "factor", rope_type);
      break;
    case RopeType::kProportional:
      if (factor) require_finite_positive(factor, "factor", rope_type);
      break;
    case RopeType::kDynamic:
      require_finite_positive(factor, "factor", rope_type);
      if (max_position_embeddings <= 0) {
        config_error("max_position_embeddings", "required (> 0) for rope_type 'dynamic'");
      }
      if (dim <= 2) config_error("rotary_dim", "dynamic NTK needs rotary_dim > 2");
      break;
    case RopeType::kYarn:
      require_context("rope_type 'yarn'");
      if (factor) {
        require_finite_positive(factor, "factor", rope_type);
      } else if (max_position_embeddings <= 0) {
        config_error("factor",
                     "required for rope_type 'yarn' (or max_position_embeddings to derive it)");
      }
      for (auto [value, name] :
           {std::pair{beta_fast, "beta_fast"}, std::pair{beta_slow, "beta_slow"},
            std::pair{mscale, "mscale"}, std::pair{mscale_all_dim, "mscale_all_dim"}}) {
        if (value && !std::isfinite(*value)) config_error(name, "expected a finite number");
      }
      break;
    case RopeType::kLongRope: {
      require_context("rope_type 'longrope'");
      if (factor) require_finite_positive(factor, "factor", rope_type);
      const auto half = static_cast<std::size_t>(dim / 2);
      for (auto [values, name] :
           {std::pair{&short_factor, "short_factor"}, std::pair{&long_factor, "long_factor"}}) {
        if (values->size() != half) {
          config_error(name, "expected " + std::to_string(half) +
                                 " entries (rotary_dim / 2), got " +
                                 std::to_string(values->size()));
        }
        for (double v : *values) {
          if (!std::isfinite(v) || v <= 0) config_error(name, "expected finite entries > 0");
        }
      }
      break;
    }
    case RopeType::kAxial:
      if (dim % 4 != 0) {
        config_error("head_dim",
                     "axial RoPE splits the pairs between rows and columns: rotary_dim "
                     "must be a multiple of 4, got " +
                         std::to_string(dim));
      }
      break;
    case RopeType::kLlama3:
      require_finite_positive(factor, "factor", rope_type);
      require_finite_positive(low_freq_factor, "low_freq_factor", rope_type);
      require_finite_positive(high_freq_factor, "high_freq_factor", rope_type);
      require_context("rope_type 'llama3'");
      if (*high_freq_factor < *low_freq_factor) {
        config_error("high_freq_factor", "expected high_freq_factor >= low_freq_factor");
      }
      break;
  }
}

int RopeConfig::num_axes() const {
  if (rope_type == RopeType::kAxial) return 2;
  return mrope_section.empty() ? 1 : static_cast<int>(mrope_section.size());
}

std::vector<int64_t> RopeConfig::resolved_mrope_section() const {
  const int64_t half = resolved_rotary_dim() / 2;
  if (rope_type == RopeType::kAxial) return {half / 2, half / 2};
  if (mrope_section.empty()) return {half};
  return mrope_section;
}

std::vector<int> RopeConfig::pair_axes() const {
  const std::vector<int64_t> sections = resolved_mrope_section();
  const auto n = static_cast<int64_t>(sections.size());
  std::vector<int> axes;
  if (mrope_interleaved && rope_type != RopeType::kAxial) {
    const int64_t half = resolved_rotary_dim() / 2;
    axes.assign(static_cast<std::size_t>(half), 0);
    for (int64_t j = 0; j < half; ++j) {
      const int64_t a = j % n;
      if (a >= 1 && j < n * sections[a]) axes[j] = static_cast<int>(a);
    }
  } else {
    for (int64_t a = 0; a < n; ++a) axes.insert(axes.end(), sections[a], static_cast<int>(a));
  }
  return axes;
}

RopeConfig default_config(int64_t head_dim, double rope_theta, Layout layout) {
  RopeConfig config;
  config.head_dim = head_dim;
  config.rope_theta = rope_theta;
  config.layout = layout;
  config.validate();
  return config;
}

}  // namespace rotary
