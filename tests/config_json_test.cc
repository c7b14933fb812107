// config.json parsing: both the v4 (rope_scaling) and v5 (rope_parameters) forms, model-family
// field names, and every real model configuration stored under tests/data/configs.
#include "rotary/config_json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "json_read.h"
#include "rotary/error.h"
#include "rotary/frequencies.h"
#include "rotary/layers.h"
#include "test_errors.h"

namespace rotary {
namespace {

TEST(config_json_test, v4_and_v5_forms_give_the_same_config) {
  const RopeConfig v4 = config_from_json(R"({
    "hidden_size": 4096, "num_attention_heads": 32, "max_position_embeddings": 131072,
    "rope_theta": 500000.0,
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                     "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}})");
  const RopeConfig v5 = config_from_json(R"({
    "hidden_size": 4096, "num_attention_heads": 32, "max_position_embeddings": 131072,
    "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                        "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                        "original_max_position_embeddings": 8192}})");
  for (const RopeConfig& c : {v4, v5}) {
    EXPECT_EQ(c.rope_type, RopeType::kLlama3);
    EXPECT_EQ(c.head_dim, 128);
    EXPECT_EQ(c.rope_theta, 500000.0);
    EXPECT_EQ(c.factor, 8.0);
    EXPECT_EQ(c.original_max_position_embeddings, 8192);
  }
  EXPECT_EQ(compute_frequencies(v4).inv_freq, compute_frequencies(v5).inv_freq);
}

TEST(config_json_test, legacy_type_key_and_null_scaling) {
  const RopeConfig c = config_from_json(
      R"({"head_dim": 64, "rope_theta": 1e6, "rope_scaling": {"type": "linear", "factor": 4}})");
  EXPECT_EQ(c.rope_type, RopeType::kLinear);
  EXPECT_EQ(c.factor, 4.0);
  const RopeConfig plain =
      config_from_json(R"({"head_dim": 64, "rope_scaling": null, "head_dim_extra": 1})");
  EXPECT_EQ(plain.rope_type, RopeType::kDefault);
  EXPECT_EQ(plain.rope_theta, 10000.0);  // transformers' default_theta
}

TEST(config_json_test, gpt_neox_and_gpt_j_names) {
  const RopeConfig neox = config_from_json(
      R"({"model_type": "gpt_neox", "hidden_size": 6144, "num_attention_heads": 64,
          "rotary_pct": 0.25, "rotary_emb_base": 10000, "max_position_embeddings": 2048})");
  EXPECT_EQ(neox.head_dim, 96);
  EXPECT_EQ(neox.resolved_rotary_dim(), 24);
  EXPECT_EQ(neox.layout, Layout::kHalfSplit);
  const RopeConfig gptj = config_from_json(
      R"({"model_type": "gptj", "n_embd": 4096, "n_head": 16, "rotary_dim": 64, "n_positions": 2048})");
  EXPECT_EQ(gptj.head_dim, 256);
  EXPECT_EQ(gptj.resolved_rotary_dim(), 64);
  EXPECT_EQ(gptj.layout, Layout::kInterleaved);
  EXPECT_EQ(gptj.max_position_embeddings, 2048);
}

TEST(config_json_test, top_level_original_context_wins_for_longrope) {
  std::string factors = "[";
  for (int i = 0; i < 48; ++i) factors += (i ? ",1.0" : "1.0");
  factors += "]";
  const RopeConfig c = config_from_json(
      R"({"hidden_size": 3072, "num_attention_heads": 32, "max_position_embeddings": 131072,
          "original_max_position_embeddings": 4096,
          "rope_scaling": {"type": "su", "short_factor": )" +
      factors + R"(, "long_factor": )" + factors + "}}");
  EXPECT_EQ(c.rope_type, RopeType::kLongRope);
  EXPECT_EQ(c.original_max_position_embeddings, 4096);
  EXPECT_NEAR(compute_frequencies(c).attention_factor, 1.1902381, 1e-7);
}

TEST(config_json_test, per_layer_type_configs_need_a_choice) {
  const std::string gemma3 = R"({"text_config": {"head_dim": 256, "hidden_size": 3840,
      "num_attention_heads": 16, "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0,
      "rope_scaling": {"rope_type": "linear", "factor": 8.0}}})";
  EXPECT_EQ(rope_layer_types(gemma3),
            (std::vector<std::string>{"full_attention", "sliding_attention"}));
  EXPECT_THROW(config_from_json(gemma3), Error);
  const RopeConfig global = config_from_json(gemma3, "full_attention");
  EXPECT_EQ(global.rope_type, RopeType::kLinear);
  EXPECT_EQ(global.rope_theta, 1e6);
  const RopeConfig local = config_from_json(gemma3, "sliding_attention");
  EXPECT_EQ(local.rope_type, RopeType::kDefault);
  EXPECT_EQ(local.rope_theta, 1e4);

  const std::string nested = R"({"head_dim": 128, "rope_parameters": {
      "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
      "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}})";
  EXPECT_EQ(config_from_json(nested, "full_attention").factor, 8.0);
  EXPECT_EQ(config_from_json(nested, "sliding_attention").rope_theta, 10000.0);
  EXPECT_THROW(config_from_json(nested, "chunked_attention"), Error);
}

TEST(config_json_test, deepseek_rotates_the_rope_slice_interleaved) {
  const RopeConfig c = config_from_json(R"({"hidden_size": 7168, "num_attention_heads": 128,
      "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "rope_theta": 10000, "rope_interleave": true,
      "max_position_embeddings": 163840,
      "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                       "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0}})");
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.layout, Layout::kInterleaved);
  EXPECT_EQ(c.rope_type, RopeType::kYarn);
}

// DeepSeek's config.json files never state rope_interleave: transformers defaults it to true.
TEST(config_json_test, deepseek_defaults_to_interleaved_pairs) {
  const std::string v3 =
      R"({"model_type": "deepseek_v3", "hidden_size": 7168, "num_attention_heads": 128,
      "qk_rope_head_dim": 64, "rope_theta": 10000})";
  EXPECT_EQ(config_from_json(v3).layout, Layout::kInterleaved);
  const std::string v2 =
      R"({"model_type": "deepseek_v2", "hidden_size": 2048, "num_attention_heads": 16,
      "qk_rope_head_dim": 64})";
  EXPECT_EQ(config_from_json(v2).layout, Layout::kInterleaved);
  const std::string half =
      R"({"model_type": "deepseek_v3", "hidden_size": 7168, "num_attention_heads": 128,
      "qk_rope_head_dim": 64, "rope_interleave": false})";
  EXPECT_EQ(config_from_json(half).layout, Layout::kHalfSplit);
}

// OLMo 3's v4 rope_scaling applies to its full-attention layers only (transformers' Olmo3Config).
TEST(config_json_test, olmo3_scales_full_attention_layers_only) {
  const std::string olmo3 =
      R"({"model_type": "olmo3", "hidden_size": 5120, "num_attention_heads": 40,
      "max_position_embeddings": 65536, "rope_theta": 500000,
      "rope_scaling": {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 8192}})";
  EXPECT_EQ(rope_layer_types(olmo3),
            (std::vector<std::string>{"full_attention", "sliding_attention"}));
  EXPECT_THROW(config_from_json(olmo3), Error);
  const RopeConfig full = config_from_json(olmo3, "full_attention");
  EXPECT_EQ(full.rope_type, RopeType::kYarn);
  EXPECT_EQ(full.rope_theta, 500000.0);
  const RopeConfig sliding = config_from_json(olmo3, "sliding_attention");
  EXPECT_EQ(sliding.rope_type, RopeType::kDefault);
  EXPECT_EQ(sliding.rope_theta, 500000.0);
  // Without scaling every layer has the same RoPE.
  EXPECT_TRUE(rope_layer_types(R"({"model_type": "olmo3", "head_dim": 128, "rope_scaling": null})")
                  .empty());
}

std::string file_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A stored config is the model's config.json itself (its RoPE fields), as a user's file would be.
std::string stored_config(const std::string& name) {
  return file_text(std::filesystem::path(ROTARY_TEST_DATA_DIR) / "configs" / name);
}

// Multi-axis RoPE from real configs: Qwen2.5-VL (v4 "mrope" type, chunked), Qwen3.5 (v5 nested,
// interleaved by the model family), and the Qwen2.5-VL vision tower's axial RoPE.
TEST(config_json_test, multimodal_sections_and_vision_towers) {
  const RopeConfig qwen25 = config_from_json(stored_config("qwen2.5-vl-7b-instruct.json"));
  EXPECT_EQ(qwen25.rope_type, RopeType::kDefault);
  EXPECT_EQ(qwen25.mrope_section, (std::vector<int64_t>{16, 24, 24}));
  EXPECT_EQ(qwen25.mrope_order, MropeOrder::kChunked);
  EXPECT_EQ(qwen25.num_axes(), 3);
  const RopeConfig qwen35 = config_from_json(stored_config("qwen3.5-9b.json"), "full_attention");
  EXPECT_EQ(qwen35.mrope_section, (std::vector<int64_t>{11, 11, 10}));
  EXPECT_EQ(qwen35.mrope_order, MropeOrder::kInterleaved);
  EXPECT_EQ(qwen35.resolved_rotary_dim(), 64);

  const RopeConfig vision = vision_config_from_json(stored_config("qwen2.5-vl-7b-instruct.json"));
  EXPECT_EQ(vision.rope_type, RopeType::kAxial);
  EXPECT_EQ(vision.axial_frequencies, AxialFrequencies::kShared);
  EXPECT_EQ(vision.head_dim, 1280 / 16);
  EXPECT_EQ(vision.rope_theta, 10000.0);

  // The family decides the section order, not the flag (Qwen3-VL always interleaves).
  const RopeConfig qwen3vl = config_from_json(R"({"model_type": "qwen3_vl_text", "head_dim": 128,
      "rope_scaling": {"rope_type": "default", "mrope_section": [24, 20, 20]}})");
  EXPECT_EQ(qwen3vl.mrope_order, MropeOrder::kInterleaved);
  const RopeConfig pixtral = vision_config_from_json(R"({"vision_config": {"model_type": "pixtral",
      "head_dim": 64, "rope_theta": 10000.0}})");
  EXPECT_EQ(pixtral.axial_frequencies, AxialFrequencies::kAlternating);
  // ERNIE-4.5-VL alternates height and width and pairs (2j, 2j + 1), whatever the config says.
  const RopeConfig ernie = config_from_json(R"({"model_type": "ernie4_5_vl_moe", "head_dim": 128,
      "rope_interleave": false, "rope_scaling": {"mrope_section": [22, 22, 20]}})");
  EXPECT_EQ(ernie.mrope_order, MropeOrder::kSpatialAlternating);
  EXPECT_EQ(ernie.layout, Layout::kInterleaved);
  // HunYuan-VL's xdrope gives a pair's two channels different axes: refused, not misread.
  EXPECT_THROW(config_from_json(R"({"model_type": "hunyuan_vl", "head_dim": 128,
      "rope_scaling": {"mrope_section": [16, 16, 16, 16]}})"),
               Error);
  EXPECT_THROW(vision_config_from_json(R"({"hidden_size": 8, "num_attention_heads": 1})"), Error);
  EXPECT_THROW(vision_config_from_json(R"({"vision_config": {"model_type": "siglip",
      "hidden_size": 64, "num_attention_heads": 1}})"),
               Error);
}

// Every stored real configuration loads by its path, for every layer type it declares.
TEST(config_json_test, every_real_model_config_loads) {
  const std::filesystem::path dir = std::filesystem::path(ROTARY_TEST_DATA_DIR) / "configs";
  int loaded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    const std::string path = entry.path().string();
    if (nlohmann::json::parse(file_text(path)).value("use_dynamic_ntk", false)) {
      // Qwen-1's remote-code scheme: refused by name rather than misread as plain RoPE.
      EXPECT_THROW(config_from_json_file(path), Error) << path;
      continue;
    }
    std::vector<std::string> types = rope_layer_types(file_text(path));
    if (types.empty()) types.push_back("");
    for (const std::string& type : types) {
      SCOPED_TRACE(entry.path().filename().string() + " " + type);
      EXPECT_NO_THROW({
        const RopeConfig c = config_from_json_file(path, type);
        const Frequencies f = compute_frequencies(c);
        EXPECT_EQ(static_cast<int64_t>(f.inv_freq.size()) * 2, f.rotary_dim);
      });
      ++loaded;
    }
  }
  EXPECT_GE(loaded, 15);
}

// ---- limits on what is read: nesting depth and size (src/json_read.h)

// The message of the rotary::Error `read` throws (kParseError unless `code` says otherwise).
template <typename F>
std::string error_of(F read, ErrorCode code = ErrorCode::kParseError) {
  try {
    read();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no rotary::Error";
  return {};
}

std::string nested_arrays(int depth) {
  return std::string(static_cast<std::size_t>(depth), '[') +
         std::string(static_cast<std::size_t>(depth), ']');
}

std::string nested_objects(int depth) {
  std::string text;
  for (int i = 0; i < depth; ++i) text += "{\"a\":";
  return text + "1" + std::string(static_cast<std::size_t>(depth), '}');
}

// A million levels once overflowed the stack when the error message printed the value back.
TEST(config_json_test, a_million_levels_of_nesting_are_refused_by_depth) {
  const std::string limit = std::to_string(detail::kMaxJsonDepth);
  for (const std::string& text :
       {nested_arrays(1'000'000), nested_objects(1'000'000), std::string(1'000'000, '['),
        R"({"head_dim": 64, "rope_scaling": )" + nested_objects(1'000'000)}) {
    for (const std::string& message :
         {error_of([&] { config_from_json(text); }), error_of([&] { rope_layer_types(text); }),
          error_of([&] { vision_config_from_json(text); })}) {
      EXPECT_NE(message.find("nesting depth exceeds the limit of " + limit), std::string::npos)
          << message;
    }
  }
}

TEST(config_json_test, nesting_up_to_the_depth_limit_is_accepted) {
  // The root object is level 1; `extra` adds kMaxJsonDepth - 1 arrays, reaching the limit.
  const auto config = [](int extra_depth) {
    return R"({"head_dim": 64, "rope_theta": 10000, "extra": )" + nested_arrays(extra_depth) + "}";
  };
  EXPECT_EQ(config_from_json(config(detail::kMaxJsonDepth - 1)).head_dim, 64);
  EXPECT_NE(error_of([&] { config_from_json(config(detail::kMaxJsonDepth)); }).find("depth"),
            std::string::npos);
}

TEST(config_json_test, text_over_the_size_limit_is_refused) {
  const std::string text(detail::kMaxConfigBytes + 1, ' ');
  EXPECT_NE(error_of([&] { config_from_json(text); }).find("exceeds the size limit of 16 MiB"),
            std::string::npos);
}

// A sparse 8 GiB file: refused from its size alone, in no time and without memory.
TEST(config_json_test, a_file_over_the_size_limit_is_refused_before_it_is_read) {
  const std::string path =
      (std::filesystem::path(::testing::TempDir()) /
       ("rotary_huge_config_" + std::to_string(std::random_device()()) + ".json"))
          .string();
  std::ofstream(path).put('{');
  std::filesystem::resize_file(path, std::uintmax_t{8} << 30);
  const std::string message = error_of([&] { config_from_json_file(path); });
  std::filesystem::remove(path);
  EXPECT_NE(message.find(path + ": file of 8589934592 bytes exceeds the size limit of 16 MiB"),
            std::string::npos)
      << message;
}

TEST(config_json_test, endless_and_unreadable_files_end_in_an_error) {
  if (std::filesystem::exists("/dev/zero")) {
    const std::string endless = error_of([] { config_from_json_file("/dev/zero"); });
    EXPECT_NE(endless.find("/dev/zero: file exceeds the size limit of 16 MiB"), std::string::npos);
  }
  const std::string dir = ::testing::TempDir();
  EXPECT_NE(error_of([&] { config_from_json_file(dir); }, ErrorCode::kIoError).find("directory"),
            std::string::npos);
}

// ---- validation as strict as transformers 5.24's (rules in src/config.cc), errors by JSON path

using testing::thrown_by;

// The argument (JSON path) of the error a config text gets.
std::string path_of_error(const std::string& json, std::string_view layer_type = {}) {
  const Error e = thrown_by([&] { config_from_json(json, layer_type); });
  return e.argument();
}

TEST(config_json_test, each_rope_type_requires_transformers_keys) {
  // transformers 5.24 raises KeyError for each of these; YaRN without factor used to be read as a
  // YaRN derived from the context lengths.
  const std::string head = R"({"head_dim": 64, "max_position_embeddings": 8192, "rope_scaling": )";
  EXPECT_EQ(
      path_of_error(head + R"({"rope_type": "yarn", "original_max_position_embeddings": 4096}})"),
      "rope_scaling.factor");
  EXPECT_EQ(path_of_error(head + R"({"rope_type": "linear"}})"), "rope_scaling.factor");
  EXPECT_EQ(path_of_error(head + R"({"type": "dynamic"}})"), "rope_scaling.factor");
  EXPECT_EQ(path_of_error(head + R"({"rope_type": "llama3", "factor": 8, "low_freq_factor": 1}})"),
            "rope_scaling.high_freq_factor");
  EXPECT_EQ(path_of_error(head + R"({"rope_type": "longrope", "long_factor": []}})"),
            "rope_scaling.short_factor");
  const Error e = thrown_by([&] { config_from_json(head + R"({"rope_type": "yarn"}})"); });
  EXPECT_EQ(e.code(), ErrorCode::kInvalidConfig);
  EXPECT_EQ(e.message(), "required for rope_type 'yarn'");
  // Present but null: transformers derives YaRN's factor as max / original, and so does rotary.
  const RopeConfig derived = config_from_json(
      head + R"({"rope_type": "yarn", "factor": null, "original_max_position_embeddings": 2048}})");
  EXPECT_FALSE(derived.factor.has_value());
  EXPECT_EQ(path_of_error(head + R"({"rope_type": "linear", "factor": null}})"),
            "rope_scaling.factor");
}

TEST(config_json_test, unknown_rope_keys_are_refused_by_path) {
  EXPECT_EQ(
      path_of_error(
          R"({"head_dim": 64, "rope_parameters": {"rope_type": "linear", "factor": 2, "foo": 1}})"),
      "rope_parameters.foo");
  // HunYuan's dynamic alpha changes the base in its own model code; rotary does not model it.
  EXPECT_EQ(path_of_error(R"({"head_dim": 64, "max_position_embeddings": 4096,
      "rope_scaling": {"type": "dynamic", "factor": 1.0, "alpha": 1000.0}})"),
            "rope_scaling.alpha");
  EXPECT_EQ(path_of_error(R"({"head_dim": 64, "rope_parameters": {
      "full_attention": {"rope_type": "default"}, "sliding_attention": {"rope_type": "default",
      "short_mscale": 1.2}}})",
                          "full_attention"),
            "rope_parameters.sliding_attention.short_mscale");
  // Keys transformers knows, and keys known to leave the rotation alone, are read past.
  const RopeConfig ministral = config_from_json(R"({"head_dim": 128,
      "max_position_embeddings": 262144, "rope_parameters": {"type": "yarn", "rope_type": "yarn",
      "rope_theta": 1000000.0, "factor": 16.0, "original_max_position_embeddings": 16384,
      "max_position_embeddings": 262144, "llama_4_scaling_beta": 0.1, "low_freq_factor": 1}})");
  EXPECT_EQ(ministral.rope_type, RopeType::kYarn);
  EXPECT_EQ(ministral.rope_theta, 1e6);
}

TEST(config_json_test, rope_type_errors_name_the_key_that_holds_it) {
  EXPECT_EQ(path_of_error(R"({"head_dim": 64, "rope_scaling": {"type": 5, "factor": 2}})"),
            "rope_scaling.type");
  EXPECT_EQ(path_of_error(R"({"head_dim": 64, "rope_parameters": {"rope_type": ["linear"]}})"),
            "rope_parameters.rope_type");
  EXPECT_EQ(path_of_error(R"({"head_dim": 64, "rope_scaling": {"rope_type": null, "type": "linear",
      "factor": 2}})"),
            "rope_scaling.rope_type");
  const Error e = thrown_by(
      [] { config_from_json(R"({"head_dim": 64, "rope_scaling": {"type": "ntk-by-parts"}})"); });
  EXPECT_EQ(e.argument(), "rope_scaling.type");
  EXPECT_NE(e.message().find("unknown value 'ntk-by-parts'"), std::string::npos);
  // rope_type wins over type, as in transformers.
  EXPECT_EQ(config_from_json(R"({"head_dim": 64, "rope_scaling": {"rope_type": "linear",
      "type": "dynamic", "factor": 2}})")
                .rope_type,
            RopeType::kLinear);
}

TEST(config_json_test, a_derived_head_dim_is_blamed_on_hidden_size) {
  const Error odd =
      thrown_by([] { config_from_json(R"({"hidden_size": 66, "num_attention_heads": 2})"); });
  EXPECT_EQ(odd.argument(), "hidden_size");
  EXPECT_NE(odd.message().find("hidden_size / num_attention_heads = 66 / 2 = 33"),
            std::string::npos)
      << odd.message();
  const Error fraction =
      thrown_by([] { config_from_json(R"({"hidden_size": 64, "num_attention_heads": 3})"); });
  EXPECT_EQ(fraction.argument(), "hidden_size");
  EXPECT_NE(fraction.message().find("not a whole number"), std::string::npos);
  EXPECT_EQ(path_of_error(R"({"text_config": {"n_embd": 70, "n_head": 2}})"), "text_config.n_embd");
  // An odd rotated part of a partial rotary still names partial_rotary_factor.
  EXPECT_EQ(path_of_error(R"({"head_dim": 64, "partial_rotary_factor": 0.53})"),
            "partial_rotary_factor");
}

TEST(config_json_test, head_dim_has_an_upper_bound_checked_before_allocating) {
  EXPECT_EQ(path_of_error(R"({"head_dim": 1000000000})"), "head_dim");
  EXPECT_EQ(path_of_error(R"({"hidden_size": 4000000000, "num_attention_heads": 2})"),
            "hidden_size");
  EXPECT_EQ(path_of_error(R"({"model_type": "deepseek_v3", "qk_rope_head_dim": 131072})"),
            "qk_rope_head_dim");
  const std::string at_limit = R"({"head_dim": )" + std::to_string(RopeConfig::kMaxHeadDim) + "}";
  EXPECT_EQ(config_from_json(at_limit).head_dim, RopeConfig::kMaxHeadDim);
}

TEST(config_json_test, non_finite_numbers_are_named_by_path) {
  // rotary's Python package passes NaN and infinities as these strings (JSON has no such numbers).
  const Error nan = thrown_by([] { config_from_json(R"({"head_dim": 64, "rope_theta": "NaN"})"); });
  EXPECT_EQ(nan.argument(), "rope_theta");
  EXPECT_EQ(nan.message(), "expected a finite number, got NaN");
  EXPECT_EQ(path_of_error(R"({"head_dim": 64, "rope_parameters": {"rope_type": "default",
      "rope_theta": "Infinity"}})"),
            "rope_parameters.rope_theta");
  EXPECT_EQ(path_of_error(R"({"head_dim": 4, "rope_scaling": {"type": "longrope",
      "short_factor": [1, 1], "long_factor": [1, "-Infinity"], "original_max_position_embeddings": 8}})"),
            "rope_scaling.long_factor[1]");
  // Fields rotary does not read may hold one (Falcon-H1's time_step_limit).
  EXPECT_EQ(config_from_json(R"({"head_dim": 64, "time_step_limit": [0.0, "Infinity"]})").head_dim,
            64);
}

TEST(config_json_test, paths_include_text_config_and_layer_types) {
  EXPECT_EQ(path_of_error(R"({"text_config": {"head_dim": 64, "rope_parameters": {
      "rope_type": "linear", "factor": 0.5}}})"),
            "text_config.rope_parameters.factor");
  EXPECT_EQ(path_of_error(R"({"text_config": {"head_dim": 64, "max_position_embeddings": 4096,
      "rope_scaling": {"rope_type": "yarn", "factor": 4, "beta_fast": -1}}})"),
            "text_config.rope_scaling.beta_fast");
  EXPECT_EQ(path_of_error(R"({"text_config": {"head_dim": 64, "rope_theta": 1}})"),
            "text_config.rope_theta");
  // Every layer type is checked, as transformers checks them all, whichever one is asked for.
  const std::string nested = R"({"head_dim": 64, "rope_parameters": {
      "full_attention": {"rope_type": "linear", "factor": 8},
      "sliding_attention": {"rope_type": "linear"}}})";
  EXPECT_EQ(path_of_error(nested, "full_attention"), "rope_parameters.sliding_attention.factor");
  // A null entry is a layer type without RoPE (transformers skips it).
  const std::string nope = R"({"head_dim": 64, "rope_parameters": {
      "full_attention": {"rope_type": "default"}, "no_rope": null}})";
  EXPECT_EQ(config_from_json(nope, "full_attention").rope_type, RopeType::kDefault);
  EXPECT_EQ(path_of_error(nope, "no_rope"), "rope_parameters.no_rope");
  // Through a file, the path comes after the file name.
  const std::string file =
      (std::filesystem::path(::testing::TempDir()) / "rotary_bad_factor.json").string();
  std::ofstream(file) << R"({"head_dim": 64, "rope_scaling": {"type": "linear", "factor": 0}})";
  const Error in_file = thrown_by([&] { config_from_json_file(file); });
  std::filesystem::remove(file);
  EXPECT_EQ(in_file.argument(), file + ": rope_scaling.factor");
}

TEST(config_json_test, sizes_are_integers_as_transformers_types_them) {
  // transformers' config classes type these `int` and refuse 8192.0; inside the rope dict an
  // integral float computes the same and is accepted.
  EXPECT_EQ(path_of_error(R"({"head_dim": 64.0})"), "head_dim");
  EXPECT_EQ(path_of_error(R"({"head_dim": 64, "max_position_embeddings": 8192.0})"),
            "max_position_embeddings");
  EXPECT_EQ(config_from_json(R"({"head_dim": 64, "max_position_embeddings": 8192,
      "rope_scaling": {"rope_type": "yarn", "factor": 4, "original_max_position_embeddings": 2048.0}})")
                .original_max_position_embeddings,
            2048);
}

TEST(config_json_test, ranges_transformers_only_logs_are_refused) {
  const std::string head = R"({"head_dim": 64, "max_position_embeddings": 8192, "rope_scaling": )";
  EXPECT_EQ(path_of_error(head + R"({"rope_type": "dynamic", "factor": 0.5}})"),
            "rope_scaling.factor");
  EXPECT_EQ(path_of_error(head + R"({"rope_type": "yarn", "factor": 4, "beta_fast": 1,
      "beta_slow": 32}})"),
            "rope_scaling.beta_fast");
  EXPECT_EQ(path_of_error(head + R"({"rope_type": "llama3", "factor": 8, "low_freq_factor": 4,
      "high_freq_factor": 1, "original_max_position_embeddings": 2048}})"),
            "rope_scaling.high_freq_factor");
  EXPECT_EQ(path_of_error(head + R"({"rope_type": "longrope", "short_factor": [1],
      "long_factor": [1], "original_max_position_embeddings": 2048}})"),
            "rope_scaling.short_factor");
  EXPECT_EQ(path_of_error(head + R"({"rope_type": "yarn", "factor": 4, "attention_factor": 0}})"),
            "rope_scaling.attention_factor");
  // Llama 4 sets low_freq_factor == high_freq_factor: transformers logs it, rotary accepts it.
  EXPECT_NO_THROW(config_from_json(head + R"({"rope_type": "llama3", "factor": 16,
      "low_freq_factor": 1, "high_freq_factor": 1, "original_max_position_embeddings": 8192}})"));
}

TEST(config_json_test, a_non_empty_rope_scaling_wins_over_rope_parameters) {
  // transformers reads `rope_scaling or rope_parameters`.
  const std::string both = R"({"head_dim": 64, "rope_parameters": {"rope_type": "default"},
      "rope_scaling": {"rope_type": "linear", "factor": 4}})";
  EXPECT_EQ(config_from_json(both).rope_type, RopeType::kLinear);
  const std::string empty_scaling = R"({"head_dim": 64, "rope_scaling": {},
      "rope_parameters": {"rope_type": "linear", "factor": 4}})";
  EXPECT_EQ(config_from_json(empty_scaling).rope_type, RopeType::kLinear);
}

TEST(config_json_test, nulls_transformers_reads_as_values_are_refused) {
  // transformers' `get(key, default)` returns a null that is present: a None base or context that
  // no model can run with, or YaRN's truncation silently off. Other nulls mean "absent".
  EXPECT_EQ(path_of_error(R"({"head_dim": 64, "rope_theta": null})"), "rope_theta");
  EXPECT_EQ(path_of_error(R"({"head_dim": 64, "max_position_embeddings": null})"),
            "max_position_embeddings");
  EXPECT_EQ(path_of_error(R"({"head_dim": 64, "max_position_embeddings": 8192, "rope_scaling": {
      "rope_type": "yarn", "factor": 4, "truncate": null}})"),
            "rope_scaling.truncate");
  EXPECT_EQ(path_of_error(R"({"head_dim": 64, "max_position_embeddings": 8192, "rope_scaling": {
      "rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4,
      "original_max_position_embeddings": null}})"),
            "rope_scaling.original_max_position_embeddings");
  const RopeConfig c = config_from_json(R"({"head_dim": null, "hidden_size": 4096,
      "num_attention_heads": 32, "max_position_embeddings": 8192, "rope_scaling": {
      "rope_type": "yarn", "factor": 4, "beta_fast": null, "attention_factor": null}})");
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_FALSE(c.beta_fast.has_value());
}

TEST(config_json_test, phi3_family_rules) {
  std::string lists = "[";
  for (int i = 0; i < 48; ++i) lists += (i ? ",1.0" : "1.0");
  lists += "]";
  const std::string phi3 = R"({"model_type": "phi3", "hidden_size": 3072,
      "num_attention_heads": 32, "max_position_embeddings": 131072,
      "original_max_position_embeddings": 4096, "rope_scaling": )";
  // Phi3Config reads an older "yarn" as "longrope", as it reads "su".
  EXPECT_EQ(config_from_json(phi3 + R"({"type": "yarn", "short_factor": )" + lists +
                             R"(, "long_factor": )" + lists + "}}")
                .rope_type,
            RopeType::kLongRope);
  EXPECT_EQ(path_of_error(phi3 + R"({"type": "linear", "factor": 2}})"), "rope_scaling.type");
  EXPECT_EQ(path_of_error(phi3 + R"({"rope_type": "default", "long_factor": []}})"),
            "rope_scaling.long_factor");
}

TEST(config_json_test, a_dict_keyed_by_rope_parameters_is_not_nested) {
  // {"type": {...}} names no layer type: transformers nests only under the config's layer types.
  EXPECT_EQ(path_of_error(R"({"head_dim": 64, "rope_scaling": {"type": {}, "factor": {}}})"),
            "rope_scaling.type");
  EXPECT_TRUE(rope_layer_types(R"({"head_dim": 64, "rope_scaling": {"type": {}}})").empty());
}

TEST(config_json_test, a_vision_tower_rope_dict_is_checked_too) {
  const Error e = thrown_by([] {
    vision_config_from_json(R"({"vision_config": {"model_type": "pixtral", "head_dim": 64,
        "rope_parameters": {"rope_type": "linear", "factor": 2}}})");
  });
  EXPECT_EQ(e.argument(), "vision_config.rope_parameters.rope_type");
  EXPECT_EQ(thrown_by([] {
              vision_config_from_json(R"({"vision_config": {"model_type": "pixtral",
        "head_dim": 64, "rope_parameters": {"rope_theta": 1}}})");
            }).argument(),
            "vision_config.rope_parameters.rope_theta");
}

// What a family's config class and model class decide beyond its config.json (src/families.cc),
// each as transformers 5.24 reads it: renamed keys (the config class's attribute_map), the M-RoPE
// sections a class falls back to, and the pairing of the class's apply function.
TEST(config_json_test, family_registry_keys_sections_and_pairing) {
  // DbrxConfig: hidden_size is d_model, num_attention_heads n_heads, max_position_embeddings
  // max_seq_len.
  const RopeConfig dbrx = config_from_json(R"({"model_type": "dbrx", "d_model": 6144,
      "n_heads": 48, "max_seq_len": 32768, "rope_parameters": {"rope_theta": 500000}})");
  EXPECT_EQ(dbrx.head_dim, 128);
  EXPECT_EQ(dbrx.max_position_embeddings, 32768);
  // ... and num_hidden_layers is n_layers, which the per-layer reader counts.
  EXPECT_EQ(layer_ropes(R"({"model_type": "dbrx", "d_model": 6144, "n_heads": 48, "n_layers": 40,
      "rope_parameters": {"rope_theta": 500000}})")
                .size(),
            40u);
  // JetMoeConfig: head_dim is kv_channels, 128 when absent; a config without it is refused
  // rather than sized from hidden_size / heads.
  EXPECT_EQ(config_from_json(R"({"model_type": "jetmoe", "kv_channels": 64,
      "hidden_size": 2048, "num_attention_heads": 16})")
                .head_dim,
            64);
  const std::string jetmoe = error_of(
      [] {
        config_from_json(R"({"model_type": "jetmoe", "hidden_size": 2048,
            "num_attention_heads": 16})");
      },
      ErrorCode::kInvalidConfig);
  EXPECT_NE(jetmoe.find("kv_channels"), std::string::npos) << jetmoe;
  // Qwen2VLRotaryEmbedding: rope_parameters.get("mrope_section", [16, 24, 24]), with or without a
  // rope dict.
  for (const char* text :
       {R"({"model_type": "qwen2_vl_text", "head_dim": 128, "rope_parameters":
            {"rope_type": "default", "rope_theta": 1000000.0}})",
        R"({"model_type": "qwen2_vl", "hidden_size": 3584, "num_attention_heads": 28})"}) {
    const RopeConfig qwen2vl = config_from_json(text);
    EXPECT_EQ(qwen2vl.mrope_section, (std::vector<int64_t>{16, 24, 24})) << text;
    EXPECT_EQ(qwen2vl.mrope_order, MropeOrder::kChunked);
  }
  // GLM-4.1V's text model pairs (2j, 2j + 1) whatever rope_interleave says; GLM-4.5V's does not.
  const RopeConfig glm4v = config_from_json(R"({"model_type": "glm4v_text", "head_dim": 128,
      "rope_interleave": false, "rope_parameters": {"rope_type": "default",
      "partial_rotary_factor": 0.5, "mrope_section": [8, 12, 12]}})");
  EXPECT_EQ(glm4v.layout, Layout::kInterleaved);
  EXPECT_EQ(glm4v.num_axes(), 3);
  const RopeConfig glm45v = config_from_json(R"({"model_type": "glm4v_moe_text",
      "head_dim": 128, "rope_parameters": {"partial_rotary_factor": 0.5,
      "mrope_section": [8, 12, 12]}})");
  EXPECT_EQ(glm45v.layout, Layout::kHalfSplit);
}

// PhiMoE's LongRoPE (PhimoeRotaryEmbedding.forward): cos/sin scaled by long_mscale once the
// sequence passes the original context, else short_mscale, with short_factor at every length.
TEST(config_json_test, phimoe_scales_cos_sin_by_its_mscales) {
  const std::string phimoe = R"({"model_type": "phimoe", "head_dim": 8,
      "max_position_embeddings": 131072, "rope_scaling": {"type": "longrope",
      "short_factor": [1, 1, 1, 1], "long_factor": [2, 3, 4, 5], "short_mscale": 1.25,
      "long_mscale": 1.5, "original_max_position_embeddings": 4096}})";
  const RopeConfig c = config_from_json(phimoe);
  EXPECT_EQ(c.short_mscale, 1.25);
  EXPECT_EQ(c.long_mscale, 1.5);
  const Frequencies inside = compute_frequencies(c, 4096);
  const Frequencies past = compute_frequencies(c, 4097);
  EXPECT_EQ(inside.attention_factor, 1.25);
  EXPECT_EQ(past.attention_factor, 1.5);
  EXPECT_EQ(past.inv_freq, inside.inv_freq);  // short_factor: 1 / base^(2i/d)
  EXPECT_EQ(past.inv_freq[1], 1.0f / std::pow(10000.0f, 0.25f));
  // Only PhiMoE's class reads them; its config class requires both for a scaled type.
  std::string other = phimoe;
  other.replace(other.find("phimoe"), 6, "phi3");
  EXPECT_EQ(thrown_by([&] { config_from_json(other); }).argument(), "rope_scaling.long_mscale");
  std::string missing = phimoe;
  missing.replace(missing.find(R"("long_mscale": 1.5,)"), 19, "");
  EXPECT_EQ(thrown_by([&] { config_from_json(missing); }).argument(), "rope_scaling.long_mscale");
}

// Llama 4's NoPE layers (Llama4TextConfig: no_rope_layers, else every 4th layer) and a layer
// type whose rope dict is null (BEAM's full-attention layers); tests/python/test_layers.py checks
// every rule against transformers' attention classes.
TEST(config_json_test, layer_ropes_follow_the_family_rule) {
  const std::vector<LayerRope> llama4 =
      layer_ropes(R"({"model_type": "llama4_text", "head_dim": 128,
      "num_hidden_layers": 8, "rope_theta": 500000})");
  ASSERT_EQ(llama4.size(), 8u);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(llama4[i].rope.has_value(), (i + 1) % 4 != 0) << i;
  EXPECT_EQ(llama4[0].rope->layout, Layout::kInterleaved);
  const std::vector<LayerRope> typed = layer_ropes(R"({"model_type": "beam", "head_dim": 64,
      "num_hidden_layers": 3, "layer_types": ["sliding_attention", "full_attention",
      "sliding_attention"], "rope_parameters": {"sliding_attention": {"rope_theta": 10000},
      "full_attention": null}})");
  EXPECT_TRUE(typed[0].rope && !typed[1].rope && typed[2].rope);
  EXPECT_EQ(typed[1].layer_type, "full_attention");
  EXPECT_EQ(thrown_by([] {
              layer_ropes(R"({"model_type": "llama4_text", "head_dim": 128,
                  "num_hidden_layers": 2, "no_rope_layers": [1, 2]})");
            }).argument(),
            "no_rope_layers[1]");
  // A number past double's range is a parse error, as config_from_json reports it (found by the
  // config fuzzer).
  EXPECT_EQ(thrown_by([] { layer_ropes(R"({"num_hidden_layers": 5E533})"); }).code(),
            ErrorCode::kParseError);
}

// ---- config_to_json: what it writes reads back as the same config

void expect_same_config(const RopeConfig& a, const RopeConfig& b) {
  EXPECT_EQ(a.rope_type, b.rope_type);
  EXPECT_EQ(a.layout, b.layout);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.resolved_rotary_dim(), b.resolved_rotary_dim());
  EXPECT_EQ(a.partial_rotary_factor, b.partial_rotary_factor);
  EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
  EXPECT_EQ(a.resolved_original_max_position_embeddings(),
            b.resolved_original_max_position_embeddings());
  EXPECT_EQ(a.factor, b.factor);
  EXPECT_EQ(a.attention_factor, b.attention_factor);
  EXPECT_EQ(a.beta_fast, b.beta_fast);
  EXPECT_EQ(a.beta_slow, b.beta_slow);
  EXPECT_EQ(a.mscale, b.mscale);
  EXPECT_EQ(a.mscale_all_dim, b.mscale_all_dim);
  EXPECT_EQ(a.truncate, b.truncate);
  EXPECT_EQ(a.short_factor, b.short_factor);
  EXPECT_EQ(a.long_factor, b.long_factor);
  EXPECT_EQ(a.low_freq_factor, b.low_freq_factor);
  EXPECT_EQ(a.high_freq_factor, b.high_freq_factor);
  EXPECT_EQ(a.pair_axes(), b.pair_axes());
  EXPECT_EQ(compute_frequencies(a, 1 << 20).inv_freq, compute_frequencies(b, 1 << 20).inv_freq);
}

TEST(config_json_test, every_real_config_written_back_reads_the_same) {
  const std::filesystem::path dir = std::filesystem::path(ROTARY_TEST_DATA_DIR) / "configs";
  int written = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    const std::string config = stored_config(entry.path().filename().string());
    if (nlohmann::json::parse(config).value("use_dynamic_ntk", false)) continue;
    std::vector<std::string> types = rope_layer_types(config);
    if (types.empty()) types.push_back("");
    for (const std::string& type : types) {
      SCOPED_TRACE(entry.path().filename().string() + " " + type);
      const RopeConfig c = config_from_json(config, type);
      if (c.alpha || c.short_mscale || c.mrope_order == MropeOrder::kSpatialAlternating) {
        EXPECT_THROW(config_to_json(c), Error);  // only the model class can say these
        continue;
      }
      expect_same_config(c, config_from_json(config_to_json(c)));
      ++written;
    }
  }
  EXPECT_GE(written, 15);
}

// The stored configs are plain config.json files, each with its provenance beside it in
// sources/NAME.json ({"model", "source": {"repository", "path", "commit", ...}}). A file that went
// back to a wrapper record ({"model", "source", "config"}) would not load as a config.json.
TEST(config_json_test, stored_configs_are_plain_config_files_with_a_provenance_record) {
  const std::filesystem::path dir = std::filesystem::path(ROTARY_TEST_DATA_DIR) / "configs";
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    SCOPED_TRACE(entry.path().filename().string());
    const nlohmann::json config = nlohmann::json::parse(file_text(entry.path()));
    EXPECT_TRUE(config.contains("model_type"));
    EXPECT_FALSE(config.contains("config"));
    EXPECT_FALSE(config.contains("source"));
    const std::filesystem::path source_path = dir / "sources" / entry.path().filename();
    ASSERT_TRUE(std::filesystem::exists(source_path));
    const nlohmann::json record = nlohmann::json::parse(file_text(source_path));
    EXPECT_FALSE(record.contains("config"));
    EXPECT_FALSE(record.at("model").get<std::string>().empty());
    EXPECT_FALSE(record.at("source").at("repository").get<std::string>().empty());
    EXPECT_FALSE(record.at("source").at("path").get<std::string>().empty());
    EXPECT_EQ(record.at("source").at("commit").get<std::string>().size(), 40u);
    ++checked;
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir / "sources")) {
    EXPECT_TRUE(std::filesystem::exists(dir / entry.path().filename())) << entry.path();
  }
  EXPECT_GE(checked, 20);
}

TEST(config_json_test, every_rope_type_written_back_reads_the_same) {
  const std::string scalings[] = {
      R"({"rope_type": "linear", "factor": 4})",
      R"({"rope_type": "dynamic", "factor": 2})",
      R"({"rope_type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
          "beta_fast": 32, "beta_slow": 1, "mscale": 1, "mscale_all_dim": 0.707,
          "truncate": false, "attention_factor": 1.2})",
      R"({"rope_type": "longrope", "short_factor": [1, 1.5], "long_factor": [2, 3.5],
          "original_max_position_embeddings": 4096, "factor": 8})",
      R"({"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4,
          "original_max_position_embeddings": 8192})",
      R"({"rope_type": "proportional", "partial_rotary_factor": 0.25, "factor": 2})",
      R"({"rope_type": "ntk", "factor": 4})",
      R"({"rope_type": "default", "mrope_section": [1], "mrope_interleaved": true})",
  };
  for (const std::string& scaling : scalings) {
    SCOPED_TRACE(scaling);
    const RopeConfig c = config_from_json(
        R"({"head_dim": 8, "rotary_dim": 4, "rope_interleave": true, "rope_theta": 50000,
            "max_position_embeddings": 32768, "rope_scaling": )" +
        scaling + "}");
    expect_same_config(c, config_from_json(config_to_json(c)));
  }
  RopeConfig axial = default_config(64);
  axial.rope_type = RopeType::kAxial;
  EXPECT_THROW(config_to_json(axial), Error);
}

}  // namespace
}  // namespace rotary
