// Inverse frequencies theta_i and the attention factor of a RoPE configuration.
//
// These are computed exactly as transformers computes them: theta_i is a float32 value obtained
// with float32 arithmetic in transformers' order of operations (the models were trained with those
// float32 frequencies), while the scalar parts (YaRN's correction range, mscale, logarithms) are
// done in double, as Python does. Kernels never re-derive theta; they take it from here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rotary/config.h"

namespace rotary {

struct Frequencies {
  // One inverse frequency per rotated pair: rotary_dim / 2 entries.
  std::vector<float> inv_freq;
  // Multiplies both cos and sin (so attention logits see its square). 1 except for YaRN/LongRoPE.
  double attention_factor = 1.0;
  int64_t rotary_dim = 0;
};

// Frequencies for `config`. `sequence_length` matters for the types whose frequencies depend on how
// long the sequence is, as transformers' per-call update does:
//   dynamic:  base' = base * (factor * L / max_pos - (factor - 1))^(d / (d - 2)),
//             L = max(sequence_length, max_position_embeddings);
//   longrope: long_factor when sequence_length > original_max_position_embeddings, else
//   short_factor.
// Without a sequence length these give the values transformers builds at initialisation.
Frequencies compute_frequencies(const RopeConfig& config,
                                std::optional<int64_t> sequence_length = std::nullopt);

// True when compute_frequencies' result depends on `sequence_length` (dynamic, longrope).
bool frequencies_depend_on_length(const RopeConfig& config);

// Why each pair has the frequency it has, in words, as `rotary inspect` prints it.
struct PairExplanation {
  // The scheme's rule for this pair: "ramp 0.25" (YaRN), "low-frequency band" (Llama 3),
  // "short_factor 1.02" (LongRoPE), "NTK-grown base" (dynamic); empty where one formula fits all.
  std::string rule;
  // Against the unscaled frequency: "extrapolated" (kept), "interpolated" (divided by the factor),
  // "blended" (between the two), "rescaled" (otherwise changed) or "not rotated" (theta 0).
  std::string regime;
};
// One entry per pair of `config`, for a call of `context` positions (0: none stated).
std::vector<PairExplanation> explain_pairs(const RopeConfig& config, int64_t context);

// The scheme's own parameters, summarised: label "YaRN ramp", text "pairs 3 .. 17 (beta_fast 32,
// beta_slow 1)"; `key` and `values` name the numbers for machine-readable output ("" and empty
// when the text says it all).
struct SchemeSummary {
  std::string label, text, key;
  std::vector<double> values;
};
// nullopt for the schemes without parameters of their own worth a line.
std::optional<SchemeSummary> explain_scheme(const RopeConfig& config);

// Why a longer call uses other frequencies (or another cos/sin scale) than a short one, in words:
// "dynamic NTK grows the base past max_position_embeddings"; empty when they never change.
std::string explain_length_change(const RopeConfig& config);

// YaRN's correction range in pair-index units (after truncation and clamping), for inspection
// tools.
struct YarnCorrectionRange {
  double low = 0;
  double high = 0;
};
YarnCorrectionRange yarn_correction_range(const RopeConfig& config);

}  // namespace rotary
