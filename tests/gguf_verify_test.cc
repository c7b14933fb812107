// compare_gguf: the GGUF fixtures against the config.json each was converted from match; broken
// conversions, made by editing a fixture's metadata as a faulty converter would have written it,
// give a mismatch of the right topic whose message names the key and the numbers.
#include "rotary/gguf_verify.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <numbers>
#include <ostream>
#include <string>
#include <utility>

#include "rotary/config_json.h"
#include "test_errors.h"

namespace rotary {
namespace {

using verify::Finding;
using verify::Severity;

GgufMetadata fixture(const std::string& name) {
  return read_gguf(std::string(ROTARY_TEST_DATA_DIR "/gguf/") + name);
}

RopeConfig config(const std::string& name) {
  return config_from_json_file(std::string(ROTARY_TEST_DATA_DIR "/configs/") + name);
}

GgufComparison compare(const GgufMetadata& m, const RopeConfig& c) {
  return compare_gguf(gguf_rope(m), c, 0, m.architecture);
}

std::string all(const GgufComparison& r) {
  std::string out;
  for (const Finding& f : r.findings) {
    out += std::string(verify::to_string(f.severity)) + " [" + f.topic + "] " + f.message + "\n";
  }
  return out;
}

// The first mismatch of `topic`, or a failure listing every finding.
Finding mismatch(const GgufComparison& r, const std::string& topic) {
  for (const Finding& f : r.findings) {
    if (f.severity == Severity::kMismatch && f.topic == topic) return f;
  }
  ADD_FAILURE() << "no " << topic << " mismatch in:\n" << all(r);
  return {};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The same metadata under another architecture: every `<old>.` key renamed.
GgufMetadata renamed(const GgufMetadata& m, const std::string& arch) {
  GgufMetadata out;
  out.architecture = arch;
  out.rope_tensors = m.rope_tensors;
  const std::string prefix = m.architecture + ".";
  for (const auto& [key, value] : m.keys) {
    const bool ours = key.rfind(prefix, 0) == 0;
    out.keys[ours ? arch + "." + key.substr(prefix.size()) : key] = value;
  }
  out.keys["general.architecture"] = arch;
  return out;
}

struct Pair {
  const char* gguf;
  const char* config;
};
void PrintTo(const Pair& p, std::ostream* os) { *os << p.gguf << " vs " << p.config; }

class FixtureMatchesItsConfig : public ::testing::TestWithParam<Pair> {};

TEST_P(FixtureMatchesItsConfig, NoMismatch) {
  const GgufMetadata m = fixture(GetParam().gguf);
  const RopeConfig c = config(GetParam().config);
  const GgufComparison r = compare(m, c);
  EXPECT_TRUE(r.match()) << all(r);
  EXPECT_EQ(r.context, c.max_position_embeddings);
  EXPECT_EQ(r.theta_gguf.size(), static_cast<std::size_t>(c.resolved_rotary_dim() / 2));
  EXPECT_EQ(r.theta_config.size(), r.theta_gguf.size());
  // Notes come last, and every note of gguf_rope is passed on.
  const GgufRope g = gguf_rope(m);
  ASSERT_GE(r.findings.size(), g.notes.size());
  EXPECT_EQ(r.findings.back().topic, "gguf");
  EXPECT_EQ(r.findings.back().message, g.notes.back());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureMatchesItsConfig,
                         ::testing::Values(Pair{"llama-3.1-8b.gguf", "llama-3.1-8b.json"},
                                           Pair{"qwen2-yarn.gguf", "qwen2.5-7b-instruct-yarn.json"},
                                           Pair{"phi3-longrope.gguf",
                                                "phi-3.5-mini-instruct.json"}));

TEST(CompareGguf, YarnAttentionFactorIsLlamaCppsFormula) {
  const GgufComparison r =
      compare(fixture("qwen2-yarn.gguf"), config("qwen2.5-7b-instruct-yarn.json"));
  EXPECT_NEAR(r.attention_gguf, 0.1 * std::log(4.0) + 1, 1e-9);
  EXPECT_NEAR(r.attention_config, 0.1 * std::log(4.0) + 1, 1e-9);
}

// Orion's bug, on the Llama checkpoint: an architecture llama.cpp runs in NORM mode whose
// converter does not reorder the rows, for a checkpoint that pairs halves.
TEST(CompareGguf, AdjacentPairsWithoutReorderingAreTheWrongPairs) {
  const GgufMetadata m = renamed(fixture("llama-3.1-8b.gguf"), "command-r");
  const GgufComparison r = compare(m, config("llama-3.1-8b.json"));
  EXPECT_FALSE(r.match());
  const Finding f = mismatch(r, "pairing");
  EXPECT_TRUE(contains(f.message, "'command-r'")) << f.message;
  EXPECT_TRUE(contains(f.message, "(2i, 2i+1)")) << f.message;
  EXPECT_TRUE(contains(f.message, "i + 64")) << f.message;
  EXPECT_TRUE(contains(f.message, "NEOX")) << f.message;
  // The frequencies themselves are right.
  for (const Finding& other : r.findings) EXPECT_NE(other.topic, "theta") << other.message;
}

// A checkpoint that already pairs adjacent channels, converted as a Llama (rows reordered).
TEST(CompareGguf, ReorderingAnInterleavedCheckpointScramblesThePairs) {
  RopeConfig c = config("llama-3.1-8b.json");
  c.layout = Layout::kInterleaved;
  const GgufComparison r = compare(fixture("llama-3.1-8b.gguf"), c);
  const Finding f = mismatch(r, "pairing");
  EXPECT_TRUE(contains(f.message, "reorders")) << f.message;
  EXPECT_TRUE(contains(f.message, "without reordering the rows")) << f.message;
}

TEST(CompareGguf, WrongBase) {
  GgufMetadata m = fixture("llama-3.1-8b.gguf");
  m.keys["llama.rope.freq_base"] = 10000.0;
  const GgufComparison r = compare(m, config("llama-3.1-8b.json"));
  const Finding f = mismatch(r, "rope_theta");
  EXPECT_TRUE(contains(f.message, "llama.rope.freq_base is 10000")) << f.message;
  EXPECT_TRUE(contains(f.message, "rope_theta is 500000")) << f.message;
  const Finding t = mismatch(r, "theta");
  EXPECT_TRUE(contains(t.message, "by position 131072")) << t.message;
}

TEST(CompareGguf, MissingRopeFreqs) {
  GgufMetadata m = fixture("llama-3.1-8b.gguf");
  m.rope_tensors.erase("rope_freqs");
  const GgufComparison r = compare(m, config("llama-3.1-8b.json"));
  const Finding f = mismatch(r, "scaling");
  EXPECT_TRUE(contains(f.message, "llama3")) << f.message;
  EXPECT_TRUE(contains(f.message, "rope_freqs is missing")) << f.message;
  EXPECT_TRUE(contains(f.message, "factor 8")) << f.message;
  // Llama 3's rule keeps the pairs whose wavelength 2 pi / theta_i is below original context /
  // high_freq_factor = 8192 / 4: only the slower pairs differ.
  int first_scaled = 0;
  while (2 * std::numbers::pi / std::pow(500000.0, -2.0 * first_scaled / 128) < 8192.0 / 4) {
    ++first_scaled;
  }
  const Finding t = mismatch(r, "theta");
  std::string scaled = "(";  // built in steps: GCC 12 warns on a chain of + here (-Wrestrict)
  scaled += std::to_string(first_scaled);
  scaled += "-63)";
  EXPECT_TRUE(contains(t.message, scaled)) << t.message;
}

TEST(CompareGguf, WrongYarnFactor) {
  GgufMetadata m = fixture("qwen2-yarn.gguf");
  m.keys["qwen2.rope.scaling.factor"] = 2.0;
  const GgufComparison r = compare(m, config("qwen2.5-7b-instruct-yarn.json"));
  const Finding f = mismatch(r, "scaling");
  EXPECT_TRUE(contains(f.message, "qwen2.rope.scaling.factor is 2")) << f.message;
  EXPECT_TRUE(contains(f.message, "factor is 4")) << f.message;
  const Finding a = mismatch(r, "attention_factor");
  // llama.cpp: 0.1 ln 2 + 1; the config: 0.1 ln 4 + 1.
  char ratio[32];
  std::snprintf(ratio, sizeof ratio, "%.6g", (0.1 * std::log(4.0) + 1) / (0.1 * std::log(2.0) + 1));
  EXPECT_TRUE(contains(a.message, ratio)) << a.message;
}

TEST(CompareGguf, DroppedYarnType) {
  GgufMetadata m = fixture("qwen2-yarn.gguf");
  m.keys.erase("qwen2.rope.scaling.type");
  const GgufComparison r = compare(m, config("qwen2.5-7b-instruct-yarn.json"));
  const Finding f = mismatch(r, "scaling");
  EXPECT_TRUE(contains(f.message, "qwen2.rope.scaling.type = yarn")) << f.message;
  EXPECT_TRUE(contains(f.message, "factor 4")) << f.message;
  EXPECT_TRUE(contains(f.message, "32768")) << f.message;
}

TEST(CompareGguf, WrongDimensionCount) {
  GgufMetadata m = fixture("phi3-longrope.gguf");
  m.keys["phi3.rope.dimension_count"] = int64_t{64};
  m.rope_tensors.clear();  // the converter would have written 32 factors; none keeps it simple
  const GgufComparison r = compare(m, config("phi-3.5-mini-instruct.json"));
  const Finding f = mismatch(r, "rotary_dim");
  EXPECT_TRUE(contains(f.message, "phi3.rope.dimension_count")) << f.message;
  EXPECT_TRUE(contains(f.message, "rotates 64 channels")) << f.message;
  EXPECT_TRUE(contains(f.message, "channels 64..95")) << f.message;
}

TEST(CompareGguf, ConfigAttentionFactorIgnoredByLlamaCpp) {
  RopeConfig c = config("qwen2.5-7b-instruct-yarn.json");
  c.attention_factor = 1.0;
  const GgufComparison r = compare(fixture("qwen2-yarn.gguf"), c);
  const Finding f = mismatch(r, "attention_factor");
  EXPECT_TRUE(contains(f.message, "the config's attention_factor")) << f.message;
  EXPECT_TRUE(contains(f.message, "0.1 ln(factor) + 1")) << f.message;
  EXPECT_TRUE(contains(f.message, "qwen2.rope.scaling.attn_factor")) << f.message;
}

TEST(CompareGguf, YarnBetasAndTruncateLlamaCppCannotRun) {
  RopeConfig c = config("qwen2.5-7b-instruct-yarn.json");
  c.beta_fast = 64.0;
  GgufComparison r = compare(fixture("qwen2-yarn.gguf"), c);
  Finding f = mismatch(r, "yarn");
  EXPECT_TRUE(contains(f.message, "beta_fast 64")) << f.message;
  EXPECT_TRUE(contains(f.message, "uses 32 and 1")) << f.message;
  EXPECT_TRUE(contains(f.message, "rad by position 32768")) << f.message;

  c = config("qwen2.5-7b-instruct-yarn.json");
  c.truncate = false;
  r = compare(fixture("qwen2-yarn.gguf"), c);
  f = mismatch(r, "yarn");
  EXPECT_TRUE(contains(f.message, "truncate: false")) << f.message;
  mismatch(r, "theta");
}

// transformers derives YaRN's factor from the two contexts when the config states none.
TEST(CompareGguf, YarnFactorDerivedFromTheContexts) {
  RopeConfig c = config("qwen2.5-7b-instruct-yarn.json");
  c.factor.reset();
  c.max_position_embeddings = 4 * 32768;
  c.original_max_position_embeddings = 32768;
  EXPECT_TRUE(compare(fixture("qwen2-yarn.gguf"), c).match());
  c.max_position_embeddings = 2 * 32768;
  const Finding f = mismatch(compare(fixture("qwen2-yarn.gguf"), c), "scaling");
  EXPECT_TRUE(contains(f.message, "qwen2.rope.scaling.factor is 4")) << f.message;
  EXPECT_TRUE(contains(f.message, "factor is 2")) << f.message;
}

TEST(CompareGguf, ScalingTheConfigDoesNotHave) {
  const GgufComparison r =
      compare(fixture("qwen2-yarn.gguf"), config("qwen2.5-7b-instruct-yarn.json").unscaled());
  const Finding f = mismatch(r, "scaling");
  EXPECT_TRUE(contains(f.message, "the GGUF scales the frequencies (yarn (factor 4")) << f.message;
  EXPECT_TRUE(contains(f.message, "qwen2.rope.scaling.type")) << f.message;
}

TEST(CompareGguf, AnotherContextLengthIsAWarning) {
  GgufMetadata m = fixture("llama-3.1-8b.gguf");
  m.keys["llama.context_length"] = int64_t{8192};
  const GgufComparison r = compare(m, config("llama-3.1-8b.json"));
  EXPECT_TRUE(r.match()) << all(r);
  ASSERT_FALSE(r.findings.empty());
  EXPECT_EQ(r.findings[0].severity, Severity::kWarning);
  EXPECT_EQ(r.findings[0].topic, "context");
  EXPECT_TRUE(contains(r.findings[0].message, "llama.context_length is 8192")) << all(r);
  EXPECT_TRUE(contains(r.findings[0].message, "131072")) << all(r);
}

TEST(CompareGguf, ContextDefaultsAndRefusals) {
  const GgufMetadata m = fixture("qwen2-yarn.gguf");
  const RopeConfig c = config("qwen2.5-7b-instruct-yarn.json");
  EXPECT_EQ(compare_gguf(gguf_rope(m), c, 4096).context, 4096);
  const Error e = testing::thrown_by([&] { compare_gguf(gguf_rope(m), c, -1); });
  EXPECT_EQ(e.argument(), "context");
}

}  // namespace
}  // namespace rotary
