#include "families.h"

#include <array>

namespace rotary::detail {
namespace {

// Pairs (2j, 2j + 1); `fixed`: whatever the config's rope_interleave says.
constexpr FamilyTraits interleaved(std::string_view model_type, bool fixed) {
  FamilyTraits f;
  f.model_type = model_type;
  f.layout = Layout::kInterleaved;
  f.layout_fixed = fixed;
  return f;
}
constexpr FamilyTraits unsupported(std::string_view model_type, std::string_view why) {
  FamilyTraits f;
  f.model_type = model_type;
  f.unsupported = why;
  return f;
}
constexpr FamilyTraits mrope(std::string_view model_type, MropeOrder order, bool required) {
  FamilyTraits f;
  f.model_type = model_type;
  f.mrope_order = order;
  f.mrope_sections_required = required;
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
constexpr auto kOwnOrder = MropeOrder::kOwnOrder;
constexpr auto kFromConfig = MropeOrder::kFromConfig;

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
    interleaved("bailing_hybrid", true),
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
    interleaved("moonshine_streaming", true),
    interleaved("openai_privacy_filter", true),
    interleaved("pe_audio", true),
    interleaved("pe_audio_video", true),
    interleaved("pe_video", true),
    // Llama 4's apply_rotary_emb multiplies complex numbers built from (2j, 2j + 1).
    interleaved("llama4", true),
    // M-RoPE: the section order is the class's, and several classes supply sections of their own
    // when the config has none.
    mrope("qwen2_vl", kChunked, true),
    mrope("qwen2_5_vl", kChunked, true),
    mrope("qwen2_5_omni", kChunked, true),
    mrope("glm4v", kChunked, false),
    mrope("glm4v_moe", kChunked, false),
    mrope("qwen3_vl", kInterleavedAxes, true),
    mrope("qwen3_vl_moe", kInterleavedAxes, true),
    mrope("qwen3_5", kInterleavedAxes, true),
    mrope("qwen3_5_moe", kInterleavedAxes, true),
    mrope("qwen3_omni_moe", kInterleavedAxes, false),
    mrope("cosmos3_edge", kInterleavedAxes, false),
    mrope("qwen4_exp", kFromConfig, true),
    mrope("glm_ocr", kFromConfig, true),
    mrope("paddleocr_vl", kFromConfig, true),
    mrope("ernie4_5_vl_moe", kOwnOrder, true),
    mrope("glm_image", kOwnOrder, false),
    mrope("hunyuan_vl", kOwnOrder, false),
    mrope("hy_v4_vl", kOwnOrder, false),
    // HunYuan's fixed NTK (HunYuanDenseV1RotaryEmbedding.compute_ntk_alpha_rope_parameters).
    ntk_alpha("hunyuan_v1_dense"),
    ntk_alpha("hunyuan_v1_moe"),
    // Schemes rotary does not implement.
    FamilyTraits{
        "nanochat", {}, false, "its rotate_half returns (x2, -x1): it rotates by minus the angle"},
    FamilyTraits{
        "roformer",
        {},
        false,
        "its sinusoidal table is computed in float64 (RoFormerSinusoidalPositionalEmbedding), "
        "not from float32 frequencies"},
    FamilyTraits{"deepseek_v4",
                 {},
                 false,
                 "partial_rotary_factor applies to head_dim, not to qk_rope_head_dim"},
    FamilyTraits{"dots3_note",
                 {},
                 false,
                 "partial_rotary_factor applies to head_dim, not to qk_rope_head_dim"},
    FamilyTraits{"mistral4",
                 {},
                 false,
                 "partial_rotary_factor applies to head_dim, not to qk_rope_head_dim"},
    unsupported("gemma4", "full-attention layers rotate global_head_dim channels"),
    FamilyTraits{
        "gemma4_unified", {}, false, "full-attention layers rotate global_head_dim channels"},
    FamilyTraits{
        "diffusion_gemma", {}, false, "full-attention layers rotate global_head_dim channels"},
    FamilyTraits{
        "embedding_gemma2", {}, false, "full-attention layers rotate global_head_dim channels"},
    unsupported("jetmoe", "its head_dim is kv_channels"),
    unsupported("zamba2", "its head_dim is attention_head_dim"),
    FamilyTraits{"minimax_m3_vl",
                 {},
                 false,
                 "it rotates the whole head_dim whatever the config's rotary_dim says"},
};

}  // namespace

const FamilyTraits* family_traits(std::string_view model_type) {
  // A multimodal model's language part is "<family>_text" (gemma4_text, mistral_large4_text).
  constexpr std::string_view kTextSuffix = "_text";
  const std::string_view family = model_type.ends_with(kTextSuffix)
                                      ? model_type.substr(0, model_type.size() - kTextSuffix.size())
                                      : model_type;
  for (const FamilyTraits& f : kFamilies) {
    if (f.model_type == model_type || f.model_type == family) return &f;
  }
  return nullptr;
}

}  // namespace rotary::detail
