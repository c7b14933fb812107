#include "families.h"

#include <array>

namespace rotary::detail {
namespace {

// Pairs (2j, 2j + 1); `fixed`: whatever the config's rope_interleave says.
constexpr FamilyTraits interleaved(std::string_view model_type, bool fixed,
                                   std::span<const KeyAlias> aliases = {}) {
  FamilyTraits f;
  f.model_type = model_type;
  f.layout = Layout::kInterleaved;
  f.layout_fixed = fixed;
  f.aliases = aliases;
  return f;
}
constexpr FamilyTraits unsupported(std::string_view model_type, std::string_view why) {
  FamilyTraits f;
  f.model_type = model_type;
  f.unsupported = why;
  return f;
}
// `pairs`: the pairing of the family's own apply function, when it is not half-split.
constexpr FamilyTraits mrope(std::string_view model_type, MropeOrder order,
                             std::span<const int64_t> default_section,
                             std::optional<Layout> pairs = std::nullopt) {
  FamilyTraits f;
  f.model_type = model_type;
  f.layout = pairs;
  f.layout_fixed = pairs.has_value();
  f.mrope_order = order;
  f.default_mrope_section = default_section;
  return f;
}
constexpr FamilyTraits aliased(std::string_view model_type, std::span<const KeyAlias> aliases) {
  FamilyTraits f;
  f.model_type = model_type;
  f.aliases = aliases;
  return f;
}
constexpr FamilyTraits longrope_mscales(std::string_view model_type) {
  FamilyTraits f;
  f.model_type = model_type;
  f.longrope_mscales = true;
  return f;
}
constexpr FamilyTraits ntk_alpha(std::string_view model_type) {
  FamilyTraits f;
  f.model_type = model_type;
  f.ntk_alpha = true;
  return f;
}

constexpr auto kChunked = MropeOrder::kChunked;
constexpr auto kInterleavedAxes = MropeOrder::kInterleaved;
constexpr auto kPairs = Layout::kInterleaved;

constexpr std::string_view kPatchCentres =
    "it rotates each patch by its centre's coordinates normalised to [-1, 1] (DINOv3's patch "
    "RoPE), not by integer positions";

// The M-RoPE sections the classes fall back to (temporal, height, width pairs).
constexpr std::array<int64_t, 3> kQwen2VlSections = {16, 24, 24};
constexpr std::array<int64_t, 3> kQwen3VlSections = {24, 20, 20};
constexpr std::array<int64_t, 3> kQwen3_5Sections = {11, 11, 10};
constexpr std::array<int64_t, 3> kGlm4vSections = {8, 12, 12};
constexpr std::array<int64_t, 3> kErnieVlSections = {22, 22, 20};
constexpr std::array<int64_t, 3> kHyV4VlSections = {12, 10, 10};  // HyV4VLTextConfig's

// The config classes' attribute_map entries for the keys rotary reads.
constexpr std::array<KeyAlias, 4> kDbrxKeys = {{{"hidden_size", "d_model"},
                                                {"num_attention_heads", "n_heads"},
                                                {"max_position_embeddings", "max_seq_len"},
                                                {"num_hidden_layers", "n_layers"}}};
constexpr std::array<KeyAlias, 1> kMoonshineKeys = {
    {{"num_attention_heads", "decoder_num_attention_heads"}}};
constexpr std::array<KeyAlias, 1> kModelMaxLength = {
    {{"max_position_embeddings", "model_max_length"}}};
constexpr std::array<KeyAlias, 1> kJetMoeKeys = {{{"head_dim", "kv_channels", true}}};
constexpr std::array<KeyAlias, 1> kZamba2Keys = {{{"head_dim", "attention_head_dim", true}}};

// Sources are transformers 5.24's models/<family>/modeling_<family>.py.
constexpr std::array kFamilies = {
    // GPT-J's rotate_every_two and its copies.
    interleaved("gptj", false),
    interleaved("gpt_j", false),
    interleaved("codegen", false),
    // DeepSeek: V2 multiplies complex pairs; V3 calls apply_rotary_pos_emb_interleave unless the
    // config sets rope_interleave false (DeepseekV3Config defaults it to true).
    interleaved("deepseek_v2", false),
    interleaved("deepseek_v3", false),
    // Attention that always calls apply_rotary_pos_emb_interleave (DeepSeek's regrouping).
    interleaved("axk2", true),
    interleaved("bailing_hybrid", true, kModelMaxLength),
    interleaved("deepseek_v32", true),
    interleaved("glm_moe_dsa", true),
    interleaved("longcat_flash", true),
    interleaved("mistral_large4", true),
    // Their own rotate_half pairs (2j, 2j + 1), with cos/sin repeated by repeat_interleave.
    interleaved("blt", true),
    interleaved("blt_global_transformer", true),
    interleaved("blt_local_encoder", true),
    interleaved("blt_local_decoder", true),
    interleaved("blt_patcher", true),
    interleaved("cohere", true),
    interleaved("cohere2", true),
    interleaved("cohere2_moe", true),
    interleaved("ernie4_5", true),
    interleaved("ernie4_5_moe", true),
    interleaved("glm", true),
    interleaved("glm4", true),
    interleaved("helium", true),
    interleaved("moonshine", true, kMoonshineKeys),
    interleaved("moonshine_streaming", true),
    interleaved("openai_privacy_filter", true),
    interleaved("dots3_note_audio", true),
    interleaved("pe_audio", true),
    interleaved("pe_audio_video", true),
    interleaved("pe_video", true),
    // Llama 4's apply_rotary_emb multiplies complex numbers built from (2j, 2j + 1).
    interleaved("llama4", true),
    // M-RoPE: the section order is the class's, and so are the sections when the config has none.
    mrope("qwen2_vl", kChunked, kQwen2VlSections),
    mrope("qwen2_5_vl", kChunked, kQwen2VlSections),
    mrope("qwen2_5_omni", kChunked, kQwen2VlSections),
    mrope("paddleocr_vl", kChunked, kQwen2VlSections),
    // GLM-4.1V's and GLM-OCR's text models rotate (2j, 2j + 1) (rotate_half_llm); GLM-4.5V's and
    // GLM-Image's half-split.
    mrope("glm4v", kChunked, kGlm4vSections, kPairs),
    mrope("glm_ocr", kChunked, kGlm4vSections, kPairs),
    mrope("glm4v_moe", kChunked, kGlm4vSections),
    mrope("glm_image", kChunked, kGlm4vSections),
    mrope("qwen3_vl", kInterleavedAxes, kQwen3VlSections),
    mrope("qwen3_vl_moe", kInterleavedAxes, kQwen3VlSections),
    mrope("qwen3_omni_moe", kInterleavedAxes, kQwen3VlSections),
    mrope("cosmos3_edge", kInterleavedAxes, kQwen3VlSections),
    mrope("cohere_compass", kInterleavedAxes, kQwen3VlSections),
    mrope("qwen3_5", kInterleavedAxes, kQwen3_5Sections),
    mrope("qwen3_5_moe", kInterleavedAxes, kQwen3_5Sections),
    mrope("qwen4_exp", kInterleavedAxes, kQwen3_5Sections),
    mrope("hy_v4_vl", kInterleavedAxes, kHyV4VlSections, kPairs),
    // Ernie4_5_VLMoeTextRotaryEmbedding: height and width alternate over the first s0 + s1 pairs.
    mrope("ernie4_5_vl_moe", MropeOrder::kSpatialAlternating, kErnieVlSections, kPairs),
    // HunYuanVLRotaryEmbedding ("xdrope") gives the two channels of a pair different axes.
    unsupported("hunyuan_vl",
                "its xdrope gives the two channels of a pair different position axes, which "
                "is not a rotation for image tokens"),
    // HunYuan's fixed NTK (HunYuanDenseV1RotaryEmbedding.compute_ntk_alpha_rope_parameters).
    ntk_alpha("hunyuan_v1_dense"),
    ntk_alpha("hunyuan_v1_moe"),
    // PhimoeRotaryEmbedding.forward: long_mscale past the original context, else short_mscale.
    longrope_mscales("phimoe"),
    // Config keys under other names.
    aliased("dbrx", kDbrxKeys),
    aliased("kimi_linear", kModelMaxLength),
    aliased("jetmoe", kJetMoeKeys),
    aliased("zamba2", kZamba2Keys),
    // Schemes rotary does not implement.
    unsupported("nanochat", "its rotate_half returns (x2, -x1): it rotates by minus the angle"),
    unsupported(
        "roformer",
        "its sinusoidal table is computed in float64 (RoFormerSinusoidalPositionalEmbedding), "
        "not from float32 frequencies"),
    unsupported("deepseek_v4",
                "partial_rotary_factor applies to head_dim, not to qk_rope_head_dim"),
    unsupported("dots3_note", "partial_rotary_factor applies to head_dim, not to qk_rope_head_dim"),
    unsupported("mistral4", "partial_rotary_factor applies to head_dim, not to qk_rope_head_dim"),
    unsupported("gemma4", "full-attention layers rotate global_head_dim channels"),
    unsupported("gemma4_unified", "full-attention layers rotate global_head_dim channels"),
    unsupported("diffusion_gemma", "full-attention layers rotate global_head_dim channels"),
    unsupported("embedding_gemma2", "full-attention layers rotate global_head_dim channels"),
    unsupported("clvp",
                "its encoder rotates max(projection_dim // (2 * num_attention_heads), 32) channels "
                "of each head, a size no RoPE key states"),
    unsupported("dinov3_vit", kPatchCentres),
    unsupported("eomt_dinov3", kPatchCentres),
    unsupported("sapiens2", kPatchCentres),
    unsupported("esmfold2",
                "its atom encoder rotates by 3D reference coordinates and atom ids, each with "
                "frequencies of its own, not by token positions"),
    unsupported("lightglue",
                "its angles are a trained linear map of keypoint coordinates, not position times "
                "frequency"),
    unsupported(
        "vjepa2",
        "it rotates three chunks by (frame, row, column) with cos/sin tiled so that a pair's "
        "two channels take different frequencies: not a rotation"),
    unsupported(
        "gemma4_vision",
        "each half of the head rotates by one of (column, row), pairing (j, j + head_dim / 4) "
        "inside the half"),
    unsupported("sam3_vit",
                "its global-attention layers rotate by patch coordinates scaled by window_size / "
                "patches per row, not by integer positions"),
    unsupported("minimax_m3_vl",
                "it rotates the whole head_dim whatever the config's rotary_dim says"),
};

// Vision towers, by the family's model_type (modeling_<family>.py's vision rotary class and apply).
constexpr VisionTraits tower(std::string_view model_type, AxialFrequencies frequencies,
                             bool columns_first = false, Layout layout = Layout::kHalfSplit) {
  VisionTraits v;
  v.model_type = model_type;
  v.frequencies = frequencies;
  v.columns_first = columns_first;
  v.layout = layout;
  return v;
}
constexpr VisionTraits unsupported_tower(std::string_view model_type, std::string_view why) {
  VisionTraits v;
  v.model_type = model_type;
  v.unsupported = why;
  return v;
}

constexpr auto kShared = AxialFrequencies::kShared;
constexpr bool kColumnsFirst = true;

constexpr std::array kVisionTowers = {
    tower("pixtral", AxialFrequencies::kAlternating),
    // Qwen2VisionRotaryEmbedding and the towers that copy it.
    tower("qwen2_vl", kShared),
    tower("qwen2_5_vl", kShared),
    tower("qwen2_5_omni", kShared),
    tower("qwen3_vl", kShared),
    tower("qwen3_vl_moe", kShared),
    tower("qwen3_omni_moe", kShared),
    tower("qwen3_5", kShared),
    tower("qwen3_5_moe", kShared),
    tower("qwen4_exp", kShared),
    tower("glm4v", kShared),
    tower("glm4v_moe", kShared),
    tower("glm_ocr", kShared),
    tower("glm_image", kShared),
    tower("glm5_next", kShared),
    tower("ernie4_5_vl_moe", kShared),
    tower("paddleocr_vl", kShared),
    tower("lfm3_vl", kShared),
    tower("video_llama_3", kShared),
    tower("exaone4_5", kShared),
    tower("cohere_compass", kShared),
    tower("dots3_note", kShared),
    tower("muse_glimmer", kShared),
    tower("muse_spark", kShared),
    tower("mlcd", kShared),
    // Step3's recomposition flips (row, column) frequencies: columns take the first pairs.
    tower("step3p7", kShared, kColumnsFirst),
    tower("step3p5", kShared, kColumnsFirst),
    // Llama4VisionRotaryEmbedding: cat(column, row) frequencies, complex (2j, 2j + 1) pairs.
    tower("llama4", kShared, kColumnsFirst, Layout::kInterleaved),
    tower("inkling2", kShared, kColumnsFirst, Layout::kInterleaved),
    unsupported_tower("kimi_k25",
                      "each frequency rotates two adjacent pairs, one by column and one by row"),
    unsupported_tower("minimax_m3_vl",
                      "three axes (frame, row, column), each with its own copy of a RoPE over "
                      "2 * floor(floor(head_dim / 3) / 2) channels"),
};

std::string_view without_suffix(std::string_view name, std::string_view suffix) {
  return name.ends_with(suffix) ? name.substr(0, name.size() - suffix.size()) : name;
}

// modeling_<family>.py's attention (and decoder) in transformers 5.24.
constexpr std::array kLayerRules = {
    LayerTraits{"llama4", LayerRule::kNoRopeLayers, 4, "Llama4TextAttention.use_rope"},
    LayerTraits{"smollm3", LayerRule::kNoRopeLayers, 4, "SmolLM3Attention.use_rope"},
    LayerTraits{"mistral_large4", LayerRule::kNoRopeLayers, 4,
                "MistralLarge4TextAttention.use_rope"},
    LayerTraits{"cohere2", LayerRule::kSlidingWindowLayers, 0, "Cohere2Attention.sliding_window"},
    LayerTraits{"flint", LayerRule::kSlidingWindowLayers, 0, "FlintAttention.sliding_window"},
    LayerTraits{"afmoe", LayerRule::kSlidingLayers, 0, "AfmoeAttention.is_local_attention"},
    LayerTraits{"lara_mini", LayerRule::kSlidingLayers, 0, "LaraMiniModel's decoder"},
    LayerTraits{"exaone4", LayerRule::kSlidingOrNoWindow, 0, "Exaone4Attention"},
    LayerTraits{"exaone_moe", LayerRule::kSlidingOrNoWindow, 0, "ExaoneMoeAttention"},
    LayerTraits{"kolibri1", LayerRule::kSlidingOrNoWindow, 0, "Kolibri1Attention"},
    LayerTraits{"granite_swa", LayerRule::kLayerTheta, 0, "GraniteSwaModel's decoder"},
    LayerTraits{"granitemoe_swa", LayerRule::kLayerTheta, 0, "GraniteMoeSwaModel's decoder"},
    LayerTraits{"muse_glimmer", LayerRule::kLayerThetaSwitch, 0, "MuseGlimmerTextModel's decoder"},
    LayerTraits{"muse_spark", LayerRule::kLayerThetaSwitch, 0, "MuseSparkTextModel's decoder"},
    LayerTraits{"zamba2", LayerRule::kMemRope, 0, "Zamba2Attention (use_mem_rope)"},
    LayerTraits{"granitemoehybrid", LayerRule::kRopeEmbeddingType, 0,
                "GraniteMoeHybridModel (position_embedding_type)"},
    LayerTraits{"olmo_hybrid", LayerRule::kFullAttentionWithBase, 0, "OlmoHybridModel"},
    LayerTraits{"cohere2_moe", LayerRule::kNotModelled, 0,
                "Cohere2MoeAttention also rotates dense prefix layers (force_rope)"},
};

std::string_view family_of(std::string_view model_type) {
  std::string_view family = model_type;
  for (std::string_view suffix : {"_text", "_encoder", "_model"}) {
    family = without_suffix(family, suffix);
  }
  return family;
}

}  // namespace

LayerTraits layer_traits(std::string_view model_type) {
  const std::string_view family = family_of(model_type);
  for (const LayerTraits& t : kLayerRules) {
    if (t.model_type == model_type || t.model_type == family) return t;
  }
  return LayerTraits{model_type, LayerRule::kEveryLayer, 0, ""};
}

const VisionTraits* vision_traits(std::string_view model_type) {
  // A tower's own model_type is "<family>_vision" (Dots3: "_vision_encoder"; Llama 4:
  // "llama4_vision_model").
  std::string_view family = model_type;
  for (std::string_view suffix : {"_vision_encoder", "_vision_model", "_vision"}) {
    family = without_suffix(family, suffix);
  }
  for (const VisionTraits& v : kVisionTowers) {
    if (v.model_type == family) return &v;
  }
  return nullptr;
}

const FamilyTraits* family_traits(std::string_view model_type) {
  // A multimodal model's language part is "<family>_text" (gemma4_text, mistral_large4_text), an
  // encoder "<family>_encoder" (pe_audio_encoder), a ViT "<family>_model" (sam3_vit_model).
  const std::string_view family = family_of(model_type);
  for (const FamilyTraits& f : kFamilies) {
    if (f.model_type == model_type || f.model_type == family) return &f;
  }
  return nullptr;
}

std::string_view config_key(std::string_view model_type, std::string_view field) {
  if (const FamilyTraits* family = family_traits(model_type)) {
    for (const KeyAlias& alias : family->aliases) {
      if (alias.field == field) return alias.key;
    }
  }
  return field;
}

}  // namespace rotary::detail
