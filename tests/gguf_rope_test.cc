// gguf_rope: the rotation llama.cpp applies to a GGUF file's metadata, as a rotary config.
// Metadata is built here as the converter (convert_hf_to_gguf at llama.cpp 0c1e57098) writes it;
// expected values come from the formulas written out below or from the model's config.json.
#include "rotary/gguf_rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "rotary/config_json.h"
#include "rotary/frequencies.h"
#include "test_errors.h"

namespace rotary {
namespace {

using testing::thrown_by;

// Metadata of architecture `arch` with `<arch>.<suffix>` keys.
GgufMetadata metadata(const std::string& arch,
                      std::vector<std::pair<std::string, GgufValue>> arch_keys) {
  GgufMetadata m;
  m.architecture = arch;
  m.keys["general.architecture"] = arch;
  for (auto& [suffix, value] : arch_keys) m.keys[arch + "." + suffix] = std::move(value);
  return m;
}

// Llama 3.1 8B as LlamaModel writes it: no rope.scaling keys, the smoothed divisors as rope_freqs.
GgufMetadata llama31() {
  GgufMetadata m = metadata("llama", {{"context_length", int64_t{131072}},
                                      {"embedding_length", int64_t{4096}},
                                      {"attention.head_count", int64_t{32}},
                                      {"attention.head_count_kv", int64_t{8}},
                                      {"rope.dimension_count", int64_t{128}},
                                      {"rope.freq_base", 500000.0}});
  // conversion/llama.py, generate_extra_tensors, with config.json's rope_scaling.
  const double base = 500000, factor = 8, low = 1, high = 4, old_context = 8192;
  std::vector<float> divisors;
  for (int i = 0; i < 64; ++i) {
    const double freq = 1.0 / std::pow(base, 2.0 * i / 128);
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < old_context / high) {
      divisors.push_back(1.0f);
    } else if (wavelen > old_context / low) {
      divisors.push_back(static_cast<float>(factor));
    } else {
      const double smooth = (old_context / wavelen - low) / (high - low);
      divisors.push_back(static_cast<float>(1 / ((1 - smooth) / factor + smooth)));
    }
  }
  m.rope_tensors["rope_freqs"] = divisors;
  return m;
}

std::vector<float> inv_freq(const RopeConfig& c, std::optional<int64_t> length = {}) {
  return compute_frequencies(c, length).inv_freq;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double rel) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], rel * want[i]) << "pair " << i;
  }
}

std::vector<double> widened(const std::vector<float>& v) { return {v.begin(), v.end()}; }

TEST(GgufRope, Llama31MatchesItsConfigAndTheFormula) {
  const GgufMetadata m = llama31();
  const GgufRope r = gguf_rope(m);
  EXPECT_EQ(r.rope_mode, "norm");
  EXPECT_TRUE(r.qk_rows_permuted);
  EXPECT_EQ(r.config.layout, Layout::kInterleaved);
  EXPECT_EQ(r.config.rotary_dim.value_or(0), 128);
  EXPECT_DOUBLE_EQ(compute_frequencies(r.config).attention_factor, 1.0);
  // ggml: theta_i = base^(-2i/d) / rope_freqs[i].
  std::vector<double> formula;
  for (int i = 0; i < 64; ++i) {
    formula.push_back(std::pow(500000.0, -2.0 * i / 128) / m.rope_tensors.at("rope_freqs")[i]);
  }
  expect_close(inv_freq(r.config), formula, 1e-6);
  const RopeConfig config =
      config_from_json_file(ROTARY_TEST_DATA_DIR "/configs/llama-3.1-8b.json");
  expect_close(inv_freq(r.config), widened(inv_freq(config)), 1e-6);
  // Every length reads the same divisors.
  EXPECT_EQ(inv_freq(r.config, 200000), inv_freq(r.config, 10));
}

GgufMetadata qwen2_yarn() {
  return metadata("qwen2", {{"context_length", int64_t{32768}},
                            {"embedding_length", int64_t{3584}},
                            {"attention.head_count", int64_t{28}},
                            {"rope.freq_base", 1000000.0},
                            {"rope.scaling.type", std::string("yarn")},
                            {"rope.scaling.factor", 4.0},
                            {"rope.scaling.original_context_length", int64_t{32768}}});
}

TEST(GgufRope, Qwen2YarnMatchesItsConfig) {
  const GgufRope r = gguf_rope(qwen2_yarn());
  EXPECT_EQ(r.rope_mode, "neox");
  EXPECT_FALSE(r.qk_rows_permuted);
  EXPECT_EQ(r.config.layout, Layout::kHalfSplit);
  EXPECT_EQ(r.config.rope_type, RopeType::kYarn);
  const RopeConfig config =
      config_from_json_file(ROTARY_TEST_DATA_DIR "/configs/qwen2.5-7b-instruct-yarn.json");
  expect_close(inv_freq(r.config), widened(inv_freq(config)), 1e-7);
  EXPECT_NEAR(compute_frequencies(r.config).attention_factor, 0.1 * std::log(4.0) + 1, 1e-12);
}

TEST(GgufRope, YarnAttentionFactorTimesTheFilesAttnFactor) {
  GgufMetadata m = qwen2_yarn();
  m.keys["qwen2.rope.scaling.attn_factor"] = 1.25;
  const GgufRope r = gguf_rope(m);
  EXPECT_NEAR(compute_frequencies(r.config).attention_factor, (0.1 * std::log(4.0) + 1) * 1.25,
              1e-12);
}

TEST(GgufRope, YarnBetasOnlyWhereTheLoaderReadsThem) {
  GgufMetadata m = qwen2_yarn();
  m.keys["qwen2.rope.scaling.yarn_beta_fast"] = 64.0;
  GgufRope r = gguf_rope(m);
  EXPECT_EQ(r.config.beta_fast.value_or(0), 32.0);  // qwen2's loader never reads it
  bool noted = false;
  for (const auto& n : r.notes) noted |= n.find("yarn_beta_fast") != std::string::npos;
  EXPECT_TRUE(noted);

  m = metadata("mistral3", {{"context_length", int64_t{262144}},
                            {"attention.key_length", int64_t{128}},
                            {"rope.freq_base", 1000000.0},
                            {"rope.scaling.type", std::string("yarn")},
                            {"rope.scaling.factor", 16.0},
                            {"rope.scaling.original_context_length", int64_t{16384}},
                            {"rope.scaling.yarn_beta_fast", 4.0},
                            {"rope.scaling.yarn_beta_slow", 1.0},
                            {"rope.scaling.yarn_log_multiplier", 1.0}});
  r = gguf_rope(m);
  EXPECT_EQ(r.config.beta_fast.value_or(0), 4.0);
  // mscale 1 over mscale_all_dim 1: llama.cpp's ratio is 1.
  EXPECT_NEAR(compute_frequencies(r.config).attention_factor, 1.0, 1e-12);
}

TEST(GgufRope, DeepSeek2MlaYarn) {
  // DeepseekV2Model writes 0.1 * mscale_all_dim; the loader divides by 0.1 and assumes
  // mscale == mscale_all_dim, so cos and sin keep their size.
  const GgufMetadata m =
      metadata("deepseek2", {{"context_length", int64_t{163840}},
                             {"attention.key_length", int64_t{576}},
                             {"attention.key_length_mla", int64_t{192}},
                             {"rope.dimension_count", int64_t{64}},
                             {"rope.freq_base", 10000.0},
                             {"rope.scaling.type", std::string("yarn")},
                             {"rope.scaling.factor", 40.0},
                             {"rope.scaling.original_context_length", int64_t{4096}},
                             {"rope.scaling.yarn_log_multiplier", 0.1}});
  const GgufRope r = gguf_rope(m);
  EXPECT_EQ(r.rope_mode, "norm");
  EXPECT_FALSE(r.qk_rows_permuted);
  EXPECT_EQ(r.config.head_dim, 64);
  EXPECT_NEAR(compute_frequencies(r.config).attention_factor, 1.0, 1e-6);
}

GgufMetadata phi3(std::vector<float> short_factors, std::vector<float> long_factors) {
  GgufMetadata m = metadata("phi3", {{"context_length", int64_t{131072}},
                                     {"embedding_length", int64_t{3072}},
                                     {"attention.head_count", int64_t{32}},
                                     {"rope.dimension_count", int64_t{96}},
                                     {"rope.freq_base", 10000.0},
                                     {"rope.scaling.original_context_length", int64_t{4096}},
                                     {"rope.scaling.attn_factor", 1.19}});
  m.rope_tensors["rope_factors_short"] = std::move(short_factors);
  m.rope_tensors["rope_factors_long"] = std::move(long_factors);
  return m;
}

TEST(GgufRope, Phi3PicksLongOrShortByTheContext) {
  std::vector<float> short_factors, long_factors;
  for (int i = 0; i < 48; ++i) {
    short_factors.push_back(1.0f + 0.02f * static_cast<float>(i));
    long_factors.push_back(1.0f + 1.5f * static_cast<float>(i));
  }
  const GgufMetadata m = phi3(short_factors, long_factors);
  const auto expected = [](const std::vector<float>& factors) {
    std::vector<double> theta;
    for (int i = 0; i < 48; ++i) theta.push_back(std::pow(10000.0, -2.0 * i / 96) / factors[i]);
    return theta;
  };
  for (const auto& [context, factors] : {std::pair{std::optional<int64_t>{}, &long_factors},
                                         std::pair{std::optional<int64_t>{4097}, &long_factors},
                                         std::pair{std::optional<int64_t>{4096}, &short_factors}}) {
    const GgufRope r = gguf_rope(m, context);
    EXPECT_EQ(r.rope_mode, "neox");
    EXPECT_EQ(r.config.rope_type, RopeType::kLongRope);
    expect_close(inv_freq(r.config), expected(*factors), 1e-6);
    // The choice is the context's, not a call's length.
    EXPECT_EQ(inv_freq(r.config, 10), inv_freq(r.config, 100000));
    EXPECT_NEAR(compute_frequencies(r.config).attention_factor, 1.19, 1e-12);
  }
}

TEST(GgufRope, LinearFactorAndACosSinScale) {
  GgufMetadata m = metadata("llama", {{"context_length", int64_t{16384}},
                                      {"attention.key_length", int64_t{128}},
                                      {"rope.scaling.type", std::string("linear")},
                                      {"rope.scaling.factor", 4.0}});
  GgufRope r = gguf_rope(m);
  EXPECT_EQ(r.config.rope_type, RopeType::kLinear);
  std::vector<double> theta;
  for (int i = 0; i < 64; ++i) theta.push_back(std::pow(10000.0, -2.0 * i / 128) / 4);
  expect_close(inv_freq(r.config), theta, 1e-6);
  // llama.cpp multiplies cos and sin by rope.scaling.attn_factor whatever the type.
  m.keys["llama.rope.scaling.attn_factor"] = 1.1;
  r = gguf_rope(m);
  expect_close(inv_freq(r.config), theta, 1e-6);
  EXPECT_NEAR(compute_frequencies(r.config).attention_factor, 1.1, 1e-12);
  // Type none: no scaling, whatever the factor says.
  m.keys["llama.rope.scaling.type"] = std::string("none");
  m.keys.erase("llama.rope.scaling.attn_factor");
  EXPECT_EQ(gguf_rope(m).config.rope_type, RopeType::kDefault);
}

// The reader's fixtures (tests/data/gguf, written with llama.cpp's gguf package from the same
// config.json files), end to end.
TEST(GgufRope, FixtureFilesMatchTheirConfigs) {
  for (const auto& [gguf, json] : {std::pair{"llama-3.1-8b.gguf", "llama-3.1-8b.json"},
                                   std::pair{"qwen2-yarn.gguf", "qwen2.5-7b-instruct-yarn.json"}}) {
    const GgufRope r = gguf_rope(read_gguf(std::string(ROTARY_TEST_DATA_DIR "/gguf/") + gguf));
    const RopeConfig config =
        config_from_json_file(std::string(ROTARY_TEST_DATA_DIR "/configs/") + json);
    expect_close(inv_freq(r.config), widened(inv_freq(config)), 1e-6);
    EXPECT_NEAR(compute_frequencies(r.config).attention_factor,
                compute_frequencies(config).attention_factor, 1e-7)
        << gguf;
  }
}

TEST(GgufRope, ModesAndRowOrder) {
  const auto mode_of = [](const std::string& arch, std::vector<int64_t> sections = {}) {
    GgufMetadata m = metadata(arch, {});
    if (!sections.empty()) m.keys[arch + ".rope.dimension_sections"] = sections;
    const GgufRopeMode mode = gguf_rope_mode(m);
    return std::pair{mode.rope_mode, mode.qk_rows_permuted};
  };
  EXPECT_EQ(mode_of("llama"), std::pair(std::string("norm"), true));
  EXPECT_EQ(mode_of("qwen2"), std::pair(std::string("neox"), false));
  EXPECT_EQ(mode_of("deepseek2"), std::pair(std::string("norm"), false));
  EXPECT_EQ(mode_of("gemma3"), std::pair(std::string("neox"), false));
  EXPECT_EQ(mode_of("qwen2vl"), std::pair(std::string("mrope"), false));
  EXPECT_EQ(mode_of("qwen3vl"), std::pair(std::string("imrope"), false));
  EXPECT_EQ(mode_of("gpt2"), std::pair(std::string("none"), false));
  // GLM-4: norm, or M-RoPE (rows reordered to half-split) when the first two sections are set.
  EXPECT_EQ(mode_of("glm4"), std::pair(std::string("norm"), false));
  EXPECT_EQ(mode_of("glm4", {8, 12, 12, 0}), std::pair(std::string("mrope"), true));
  EXPECT_EQ(mode_of("glm4", {8, 0, 0, 0}), std::pair(std::string("norm"), false));
  EXPECT_EQ(mode_of("glm4moe"), std::pair(std::string("neox"), false));
}

TEST(GgufRope, Qwen2VlChunkedSections) {
  const GgufMetadata m =
      metadata("qwen2vl", {{"context_length", int64_t{128000}},
                           {"embedding_length", int64_t{3584}},
                           {"attention.head_count", int64_t{28}},
                           {"rope.freq_base", 1000000.0},
                           {"rope.dimension_sections", std::vector<int64_t>{16, 24, 24, 0}}});
  const GgufRope r = gguf_rope(m);
  EXPECT_EQ(r.config.mrope_section, (std::vector<int64_t>{16, 24, 24}));
  EXPECT_EQ(r.config.mrope_order, MropeOrder::kChunked);
  EXPECT_EQ(r.config.layout, Layout::kHalfSplit);
}

// ggml's interleaved M-RoPE gives the pairs past 3 * section the fourth position component;
// transformers' Qwen3-VL gives them the temporal one.
TEST(GgufRope, RefusesAnInterleavedSplitRotaryCannotExpress) {
  const GgufMetadata m =
      metadata("qwen3vl", {{"context_length", int64_t{262144}},
                           {"attention.key_length", int64_t{128}},
                           {"rope.freq_base", 5000000.0},
                           {"rope.dimension_sections", std::vector<int64_t>{24, 20, 20, 0}}});
  const Error e = thrown_by([&] { gguf_rope(m); });
  EXPECT_EQ(e.argument(), "qwen3vl.rope.dimension_sections");
  EXPECT_NE(e.message().find("pair 61"), std::string::npos) << e.message();
}

TEST(GgufRope, Refusals) {
  const auto refused = [](const GgufMetadata& m) {
    const Error e = thrown_by([&] { gguf_rope(m); });
    EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig);
    return e;
  };
  GgufMetadata m = llama31();
  m.architecture = "llama99";
  Error e = refused(m);
  EXPECT_EQ(e.argument(), "general.architecture");
  EXPECT_NE(e.message().find("llama99"), std::string::npos);

  e = refused(metadata("gpt2", {{"context_length", int64_t{1024}}}));
  EXPECT_EQ(e.argument(), "general.architecture");
  EXPECT_NE(e.message().find("no RoPE"), std::string::npos);

  m = llama31();
  m.rope_tensors["rope_freqs"].pop_back();
  EXPECT_EQ(refused(m).argument(), "rope_freqs");

  m = llama31();
  m.keys["llama.rope.freq_base"] = -500000.0;
  EXPECT_EQ(refused(m).argument(), "llama.rope.freq_base");

  m = llama31();
  m.keys["llama.rope.scaling.wobble"] = 2.0;
  EXPECT_EQ(refused(m).argument(), "llama.rope.scaling.wobble");

  m = qwen2_yarn();
  m.rope_tensors["rope_freqs"] = std::vector<float>(64, 2.0f);
  EXPECT_EQ(refused(m).argument(), "rope_freqs");

  m = metadata("gemma3", {{"context_length", int64_t{131072}},
                          {"attention.key_length", int64_t{256}},
                          {"rope.freq_base", 1000000.0},
                          {"rope.freq_base_swa", 10000.0}});
  EXPECT_EQ(refused(m).argument(), "gemma3.rope.freq_base_swa");
  // The same base, but llama.cpp's sliding-window layers keep a scale of 1.
  m.keys["gemma3.rope.freq_base_swa"] = 1000000.0;
  m.keys["gemma3.rope.scaling.factor"] = 8.0;
  EXPECT_EQ(refused(m).argument(), "gemma3.rope.freq_base_swa");
  m.keys.erase("gemma3.rope.scaling.factor");
  EXPECT_EQ(gguf_rope(m).config.rope_type, RopeType::kDefault);

  m = llama31();
  m.keys["llama.rope.dimension_count"] = int64_t{64};  // llama.cpp: "invalid n_rot"
  EXPECT_EQ(refused(m).argument(), "llama.rope.dimension_count");

  // OLMo 3: a sliding window and YaRN, no freq_base_swa. olmo2's loader rotates the sliding-window
  // layers with the same base but a scale of 1 (src/models/olmo2.cpp), the others with YaRN.
  m = metadata("olmo2", {{"context_length", int64_t{65536}},
                         {"attention.key_length", int64_t{128}},
                         {"attention.sliding_window", int64_t{4096}},
                         {"rope.freq_base", 500000.0},
                         {"rope.scaling.type", std::string("yarn")},
                         {"rope.scaling.factor", 8.0},
                         {"rope.scaling.original_context_length", int64_t{8192}}});
  EXPECT_EQ(refused(m).argument(), "olmo2.attention.sliding_window");
  m.keys["olmo2.attention.sliding_window"] = int64_t{0};  // no sliding-window layers
  EXPECT_EQ(gguf_rope(m).config.rope_type, RopeType::kYarn);
}

TEST(GgufRope, NotesWhatItAssumed) {
  const GgufRope r = gguf_rope(metadata("qwen2", {{"context_length", int64_t{4096}},
                                                  {"attention.key_length", int64_t{64}},
                                                  {"rope.scaling.finetuned", true}}));
  EXPECT_EQ(r.config.rope_type, RopeType::kDefault);
  EXPECT_EQ(r.config.rope_theta, 10000.0);
  std::string all;
  for (const auto& n : r.notes) all += n + "\n";
  EXPECT_NE(all.find("no rope.freq_base"), std::string::npos) << all;
  EXPECT_NE(all.find("no rope.scaling.type"), std::string::npos) << all;
  EXPECT_NE(all.find("finetuned"), std::string::npos) << all;
}

}  // namespace
}  // namespace rotary
