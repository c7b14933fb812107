// The architecture table. Source: llama.cpp at commit 0c1e57098 (as vendored by the
// llama-cpp-python 0.3.36 sdist):
// - the mode: src/llama-model.cpp, function llama_model_rope_type(); the names:
//   src/llama-arch.cpp, table LLM_ARCH_NAMES (every architecture but LLM_ARCH_UNKNOWN);
// - the row order: convert_hf_to_gguf's model classes in conversion/*.py. Permuted are the classes
//   that apply LlamaModel.permute or an equivalent to q_proj/k_proj (llama.py LlamaModel and its
//   subclasses with undo_permute = True: arcee, smollm3, granite*, mistral3 (Ministral3Model; the
//   native Mistral format is already in that order), eagle3, llama-embed, nanbeige; graniteswitch
//   per slice; llada.py; olmo.py; arctic.py; chameleon.py; minicpm.py; internlm.py (internlm2 and
//   InternLM3 as llama); deci.py; deepseek.py DeepseekModel; baichuan.py; xverse.py;
//   bailingmoe.py; muse_glimmer.py's _unpermute_for_rope) and glm.py Glm4Model with M-RoPE
//   (normal_to_neox, the opposite direction). Not permuted: every other class, including the norm
//   architectures whose transformers code already rotates adjacent pairs (deepseek2 and its kin,
//   command-r, cohere2, ernie4_5, chatglm, glm4 without M-RoPE, llama4).
#include "gguf_architectures.h"

#include <algorithm>
#include <initializer_list>
#include <iterator>

namespace rotary::detail {
namespace {

using M = GgufModeRule;

// In LLM_ARCH_NAMES order.
constexpr GgufArchitecture kArchitectures[] = {
    {"clip", M::kNone, false},
    {"llama", M::kNorm, true},
    {"llama4", M::kNorm, false},
    {"deci", M::kNorm, true},
    {"falcon", M::kNeox, false},
    {"grok", M::kNeox, false},
    {"gpt2", M::kNone, false},
    {"gptj", M::kNone, false},
    {"gptneox", M::kNeox, false},
    {"mpt", M::kNone, false},
    {"baichuan", M::kNorm, true},
    {"starcoder", M::kNorm, false},
    {"refact", M::kNone, false},
    {"bert", M::kNeox, false},
    {"modern-bert", M::kNeox, false},
    {"nomic-bert", M::kNeox, false},
    {"nomic-bert-moe", M::kNeox, false},
    {"neo-bert", M::kNorm, false},
    {"jina-bert-v2", M::kNone, false},
    {"jina-bert-v3", M::kNeox, false},
    {"eurobert", M::kNeox, false},
    {"bloom", M::kNone, false},
    {"stablelm", M::kNeox, false},
    {"qwen", M::kNeox, false},
    {"qwen2", M::kNeox, false},
    {"qwen2moe", M::kNeox, false},
    {"qwen2vl", M::kMrope, false},
    {"qwen3", M::kNeox, false},
    {"qwen3moe", M::kNeox, false},
    {"qwen3next", M::kNeox, false},
    {"qwen3vl", M::kImrope, false},
    {"qwen3vlmoe", M::kImrope, false},
    {"qwen35", M::kImrope, false},
    {"qwen35moe", M::kImrope, false},
    {"qwen4exp", M::kImrope, false},
    {"phi2", M::kNeox, false},
    {"phi3", M::kNeox, false},
    {"phimoe", M::kNeox, false},
    {"plamo", M::kNeox, false},
    {"plamo2", M::kNeox, false},
    {"plamo3", M::kNeox, false},
    {"codeshell", M::kNeox, false},
    {"orion", M::kNeox, false},
    {"internlm2", M::kNorm, true},
    {"minicpm", M::kNorm, true},
    {"minicpm3", M::kNeox, false},
    {"gemma", M::kNeox, false},
    {"gemma2", M::kNeox, false},
    {"gemma3", M::kNeox, false},
    {"gemma3n", M::kNeox, false},
    {"gemma4", M::kNeox, false},
    {"gemma4-assistant", M::kNeox, false},
    {"gemma-embedding", M::kNeox, false},
    {"starcoder2", M::kNeox, false},
    {"mamba", M::kNone, false},
    {"mamba2", M::kNone, false},
    {"maple", M::kNeox, false},
    {"jamba", M::kNone, false},
    {"falcon-h1", M::kNeox, false},
    {"xverse", M::kNorm, true},
    {"command-r", M::kNorm, false},
    {"cohere2", M::kNorm, false},
    {"cohere2moe", M::kNorm, false},
    {"dbrx", M::kNeox, false},
    {"olmo", M::kNorm, true},
    {"olmo2", M::kNeox, false},
    {"olmoe", M::kNeox, false},
    {"muse-glimmer", M::kNorm, true},
    {"openelm", M::kNeox, false},
    {"arctic", M::kNorm, true},
    {"deepseek", M::kNorm, true},
    {"deepseek2", M::kNorm, false},
    {"deepseek2-ocr", M::kNorm, false},
    {"deepseek32", M::kNorm, false},
    {"deepseek4", M::kNorm, false},
    {"chatglm", M::kNorm, false},
    {"glm4", M::kNormOrMrope, true},
    {"glm4moe", M::kNeoxOrMrope, false},
    {"glm-dsa", M::kNorm, false},
    {"bitnet", M::kNeox, false},
    {"t5", M::kNone, false},
    {"t5encoder", M::kNone, false},
    {"jais", M::kNone, false},
    {"jais2", M::kNeox, false},
    {"nemotron", M::kNeox, false},
    {"nemotron_h", M::kNone, false},
    {"nemotron_h_moe", M::kNone, false},
    {"exaone", M::kNeox, false},
    {"exaone4", M::kNeox, false},
    {"exaone-moe", M::kNeox, false},
    {"rwkv6", M::kNone, false},
    {"rwkv6qwen2", M::kNone, false},
    {"rwkv7", M::kNone, false},
    {"arwkv7", M::kNone, false},
    {"granite", M::kNorm, true},
    {"granitemoe", M::kNorm, true},
    {"granitehybrid", M::kNorm, true},
    {"graniteswitch", M::kNorm, true},
    {"granite_swa", M::kNorm, true},
    {"chameleon", M::kNorm, true},
    {"wavtokenizer-dec", M::kNone, false},
    {"plm", M::kNorm, false},
    {"bailingmoe", M::kNorm, true},
    {"bailingmoe2", M::kNeox, false},
    {"bailingmoe3", M::kNormOrMrope, false},
    {"dots1", M::kNeox, false},
    {"dots3note", M::kNorm, false},
    {"arcee", M::kNorm, true},
    {"afmoe", M::kNeox, false},
    {"laguna", M::kNeox, false},
    {"ernie4_5", M::kNorm, false},
    {"ernie4_5-moe", M::kNorm, false},
    {"hunyuan-moe", M::kNeox, false},
    {"hunyuan-dense", M::kNeox, false},
    {"hunyuan_vl", M::kNeoxOrMrope, false},
    {"hy_v3", M::kNeox, false},
    {"hy_v4", M::kNorm, false},
    {"smollm3", M::kNorm, true},
    {"gpt-oss", M::kNeox, false},
    {"lfm2", M::kNeox, false},
    {"lfm2moe", M::kNeox, false},
    {"dream", M::kNeox, false},
    {"smallthinker", M::kNeox, false},
    {"llada", M::kNorm, true},
    {"llada-moe", M::kNeox, false},
    {"seed_oss", M::kNeox, false},
    {"grovemoe", M::kNeox, false},
    {"apertus", M::kNeox, false},
    {"minimax-01", M::kNeox, false},
    {"hrm_text", M::kNeox, false},
    {"minimax-m2", M::kNeox, false},
    {"minimax-m3", M::kNeox, false},
    {"cogvlm", M::kNeox, false},
    {"rnd1", M::kNeox, false},
    {"pangu-embedded", M::kNeox, false},
    {"mistral3", M::kNorm, true},
    {"eagle3", M::kNorm, true},
    {"dflash", M::kDflash, false},
    {"mistral4", M::kNorm, false},
    {"paddleocr", M::kMrope, false},
    {"mimo2", M::kNeox, false},
    {"step35", M::kNeox, false},
    {"spark2_5", M::kNeox, false},
    {"llama-embed", M::kNorm, true},
    {"maincoder", M::kNorm, false},
    {"kimi-linear", M::kNone, false},
    {"kimi-k3", M::kNone, false},
    {"glm5-next", M::kNone, false},
    {"talkie", M::kNeox, false},
    {"mellum", M::kNeox, false},
    {"nanbeige", M::kNorm, true},
    {"qwen3tts", M::kImrope, false},
    {"pockettts", M::kNorm, false},
};

bool among(std::string_view arch, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), arch) != names.end();
}

}  // namespace

const GgufArchitecture* find_gguf_architecture(std::string_view name) {
  const auto* found = std::find_if(std::begin(kArchitectures), std::end(kArchitectures),
                                   [&](const GgufArchitecture& a) { return a.name == name; });
  return found == std::end(kArchitectures) ? nullptr : found;
}

// src/models/grok.cpp and mistral3.cpp read the betas; grok.cpp alone the blend and its factor.
bool reads_yarn_betas(std::string_view arch) { return among(arch, {"grok", "mistral3"}); }
bool reads_yarn_ext_and_attn(std::string_view arch) { return arch == "grok"; }
// deepseek2.cpp (also mistral4's loader) and deepseek32.cpp divide by 0.1 ("cancel the factor
// from the convert script"); mistral3.cpp takes the value as it is.
bool divides_yarn_log_mul(std::string_view arch) {
  return among(arch, {"deepseek2", "mistral4", "deepseek32"});
}
bool reads_yarn_log_mul(std::string_view arch) {
  return divides_yarn_log_mul(arch) || arch == "mistral3";
}

// The loaders that set rope_freq_base_train_swa (and rope_freq_scale_train_swa) from the other
// layers' values (olmo2 sets the scale to 1).
bool copies_base_to_swa(std::string_view arch) {
  return among(arch, {"exaone-moe", "exaone4", "olmo2", "llama4", "muse-glimmer", "gpt-oss",
                      "spark2_5", "cohere2moe", "afmoe"});
}
bool copies_scale_to_swa(std::string_view arch) {
  return among(arch,
               {"exaone-moe", "exaone4", "llama4", "gpt-oss", "spark2_5", "cohere2moe", "afmoe"});
}

}  // namespace rotary::detail
