// One RoPE frequency scheme (a `rope_type`) as one unit: everything the rest of the library asks
// about a scheme goes through its RopeVariant, so that adding a scheme means one new file in
// src/variants/ and one line in ROTARY_ROPE_TYPES (include/rotary/config.h).
//
// The unit owns: the keys transformers requires in the rope dict, its rules on the values, its
// frequencies (transcribed operation by operation from the reference code), how they change with
// the sequence length, and the words `rotary inspect` prints for each pair. The rules every scheme
// shares (sizes, rope_theta, the multimodal sections) stay in src/config.cc.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rotary/config.h"
#include "rotary/frequencies.h"
#include "rotary/verify.h"

namespace rotary::verify {
struct FitContext;  // src/verify/fit_toolkit.h
}  // namespace rotary::verify

namespace rotary::detail {

// A unit's name is the one ROTARY_ROPE_TYPES gives it.
struct RopeVariant {
  // Older names read as this type (Phi-3's "su").
  std::span<const std::string_view> aliases = {};
  // The keys transformers requires in the rope dict for this type (present, even if null), beyond
  // rope_theta and the original context it fills in from the top level.
  std::span<const std::string_view> required_keys = {};
  // Whether the scheme reads original_max_position_embeddings, which transformers then takes from
  // the top level of the config when the rope dict lacks it.
  bool uses_original_context = false;
  // Whether some pairs lie between two regimes (YaRN's ramp, Llama 3's smoothed band), which
  // inspect calls "blended" rather than "rescaled".
  bool blends_pairs = false;

  // The scheme's own rules on a config whose shared fields are valid; throws Error naming the
  // field. `rotary_dim` is the resolved rotary dimension.
  void (*validate)(const RopeConfig& config, int64_t rotary_dim) = nullptr;
  // The frequencies of a valid config for a call of `sequence_length` positions (nullopt: as
  // transformers builds them at initialisation). `rotary_dim` is the resolved rotary dimension.
  Frequencies (*frequencies)(const RopeConfig& config, int64_t rotary_dim,
                             std::optional<int64_t> sequence_length) = nullptr;
  // Calls longer than this many positions use other frequencies than the initial ones (dynamic
  // NTK's grown base, LongRoPE's long factors); nullptr: never.
  int64_t (*frequencies_change_after)(const RopeConfig& config) = nullptr;
  // Whether every call past that length uses one and the same set (LongRoPE's long factors),
  // which the rotation driver then computes once.
  bool one_set_past_change = false;
  // Why a call past frequencies_change_after uses other frequencies, in words ("dynamic NTK grows
  // the base past max_position_embeddings"); nullptr where they never change.
  std::string (*length_change)(const RopeConfig& config) = nullptr;
  // The per-pair rule inspect prints ("ramp 0.25"); nullptr when every pair follows one formula.
  std::string (*pair_rule)(const RopeConfig& config, int64_t pair, int64_t context) = nullptr;
  // A summary line of the scheme's own parameters for inspect; nullptr when it has none.
  std::optional<SchemeSummary> (*summary)(const RopeConfig& config) = nullptr;

  // How `verify` recognises the scheme in measured frequencies: its parameters estimated from
  // theta and rounded to the fewest digits, kept only where compute_frequencies reproduces theta
  // (src/verify/fit_toolkit.h); nullopt when nothing of the scheme is seen. nullptr where verify
  // does not name the scheme (dynamic NTK is default RoPE within its context; axial is 2D).
  std::optional<verify::FamilyFit> (*fit)(const verify::FitContext& measured) = nullptr;
  // The identified parameters in words: "yarn: base 10000, factor 4, ramp over pairs 3 .. 17".
  std::string (*describe_fit)(const verify::FamilyFit& fit) = nullptr;
  // Schemes are tried from the lowest rank up and the first that fits wins, so the simpler scheme
  // (fewer parameters) takes the lower rank.
  int fit_rank = 0;
};

// The unit of `type`.
const RopeVariant& variant_of(RopeType type);
// The type whose name or alias is `name`, or nullopt.
std::optional<RopeType> find_rope_type(std::string_view name);
// "default, linear, ..., longrope (su), ...": every name, aliases in parentheses.
std::string rope_type_names();
// The types verify can name, in the order it tries them (fit_rank).
std::vector<RopeType> fit_order();

// The length past which `config`'s frequencies change; the largest int64_t when they never do.
inline int64_t frequencies_change_after(const RopeConfig& config) {
  const RopeVariant& v = variant_of(config.rope_type);
  return v.frequencies_change_after ? v.frequencies_change_after(config)
                                    : std::numeric_limits<int64_t>::max();
}

}  // namespace rotary::detail
