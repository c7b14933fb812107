"""The RoPE metadata llama.cpp's converter (convert_hf_to_gguf) writes for a config.json, as a GGUF file.

A test helper, not part of the package: it lets the tests convert every stored config the way
llama.cpp would and check what rotary reads back against transformers. It follows the converter of
llama.cpp commit 0c1e57098 (as vendored by the llama-cpp-python 0.3.36 sdist), whose model classes
live in conversion/*.py (convert_hf_to_gguf.py is the driver that picks the class registered for the
config's ``architectures[0]``). Only the keys that reach llama.cpp's RoPE are written, plus the
head geometry llama.cpp derives the head size from; no weights. Rules by source:

- conversion/base.py, TextModel.__init__: text_config merged into the top level; rope_parameters
  (or rope_scaling) with rope_theta / rotary_emb_base, partial_rotary_factor, a legacy ``type``
  and original_max_position_embeddings mirrored into it.
- conversion/base.py, TextModel.set_gguf_parameters: context_length, linear and yarn scaling keys,
  mrope_section padded to 4, rope_theta as freq_base, a sliding-window theta as freq_base_swa,
  head_dim as attention.key_length. "llama3" writes no key (a rope_freqs tensor instead);
  "dynamic", "default", "mrope" write none.
- per class (file, class): what it adds or writes instead; see ARCHITECTURES.

A config whose architecture or RoPE is not implemented here is refused (ConversionRefused), so a
test never checks a file the converter would not have written.
"""

import math

import numpy as np
import torch
from gguf import GGUFWriter, RopeScalingType


class ConversionRefused(Exception):
    """The config is not converted here: the converter has no class for it, or its rule is not
    implemented in this module (the message says which)."""


# config.json model_type (top level, as the converter's architectures[0] dispatch sees it) ->
# (GGUF general.architecture, the converter class that writes it: file, class).
ARCHITECTURES = {
    "llama": ("llama", "llama.py LlamaModel (LlamaForCausalLM)"),
    "mistral": ("llama", "llama.py LlamaModel (MistralForCausalLM)"),
    "smollm3": ("smollm3", "llama.py SmolLM3Model"),
    "llama4": ("llama4", "llama.py Llama4Model (Llama4ForConditionalGeneration)"),
    "mistral3": ("mistral3", "mistral3.py Mistral3Model.Ministral3Model (Mistral3ForConditionalGeneration)"),
    "cohere": ("command-r", "command_r.py CommandR2Model (CohereForCausalLM)"),
    "deepseek_v2": ("deepseek2", "deepseek.py DeepseekV2Model (DeepseekV2ForCausalLM)"),
    "deepseek_v3": ("deepseek2", "deepseek.py DeepseekV2Model (DeepseekV3ForCausalLM)"),
    "exaone4": ("exaone4", "exaone.py Exaone4Model"),
    "gemma3": ("gemma3", "gemma.py Gemma3Model (Gemma3ForConditionalGeneration)"),
    "gpt_neox": ("gptneox", "gptneox.py GPTNeoXModel"),
    "gpt_oss": ("gpt-oss", "gpt_oss.py GptOssModel"),
    "internlm2": ("internlm2", "internlm.py InternLM2Model"),
    "olmo3": ("olmo2", "olmo.py Olmo2Model (Olmo3ForCausalLM)"),
    "phi": ("phi2", "phi.py Phi2Model (PhiForCausalLM)"),
    "phi3": ("phi3", "phi.py Phi3MiniModel (Phi3ForCausalLM)"),
    "qwen": ("qwen", "qwen.py QwenModel (QWenLMHeadModel)"),
    "qwen2": ("qwen2", "qwen.py Qwen2Model"),
    "qwen2_5_vl": ("qwen2vl", "qwenvl.py Qwen2VLModel (Qwen2_5_VLForConditionalGeneration)"),
    "qwen3_vl": ("qwen3vl", "qwen3vl.py Qwen3VLTextModel (a Qwen3Model)"),
    "qwen3_5": ("qwen35", "qwen.py Qwen3_5TextModel (Qwen3NextModel, _Qwen35MRopeMixin)"),
    "stablelm": ("stablelm", "stablelm.py StableLMModel"),
}

MODEL_TYPE_TO_ARCH = {model_type: arch for model_type, (arch, _) in ARCHITECTURES.items()}

# model_type -> why it is not converted.
NOT_CONVERTED = {
    "gptj": "the converter registers no class for GPTJForCausalLM (llama.cpp has the gptj "
    "architecture but convert_hf_to_gguf cannot write it)",
    "phi3_v": "the converter registers no class for Phi3VForCausalLM (Phi-3-vision)",
}

# Head geometry keys: llama.cpp takes the head size from attention.key_length, else
# embedding_length / head_count.
_HEAD_COUNT = ("num_attention_heads", "n_head", "n_heads")
_CONTEXT = ("max_position_embeddings", "n_ctx", "n_positions", "max_length", "max_sequence_length", "model_max_length")


def model_type_of(config):
    return config["model_type"]


def refusal_reason(config):
    """Why `config` is not converted here, or None."""
    model_type = model_type_of(config)
    if model_type in NOT_CONVERTED:
        return NOT_CONVERTED[model_type]
    if model_type not in ARCHITECTURES:
        return f"model_type {model_type!r} is not implemented in this test converter"
    if model_type == "mistral3" and config.get("text_config", {}).get("model_type") == "mistral4":
        return "Mistral 4 (Mistral3Model.Mistral4Model, a DeepseekV2Model) is not implemented here"
    return None


def write_gguf(config, path):
    """Writes to `path` the GGUF metadata the converter writes for `config` (a config.json dict);
    returns the GGUF architecture. Raises ConversionRefused for what is not implemented."""
    reason = refusal_reason(config)
    if reason is not None:
        raise ConversionRefused(reason)
    model_type = model_type_of(config)
    arch = MODEL_TYPE_TO_ARCH[model_type]
    hparams = _hparams(config)
    rope = _rope_parameters(hparams)
    writer = GGUFWriter(str(path), arch)
    _WRITERS.get(model_type, _write_generic)(writer, hparams, rope, model_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return arch


# ---- TextModel.__init__ ---------------------------------------------------------------------


def _hparams(config):
    hparams = dict(config)
    if "text_config" in hparams:
        hparams = {**hparams, **hparams["text_config"]}
    return hparams


def _find(hparams, keys, default=None):
    """ModelBase.find_hparam: the value of the first key present (even if null)."""
    for key in keys:
        if key in hparams:
            return hparams[key]
    return default


def _rope_parameters(hparams):
    rope = dict(hparams.get("rope_parameters", hparams.get("rope_scaling")) or {})
    theta = _find(
        hparams, ["global_rope_theta", "rope_global_theta", "rope_theta_global", "rope_theta", "rotary_emb_base"]
    )
    local = _find(
        hparams, ["local_rope_theta", "rope_local_theta", "rope_theta_local", "swa_rope_theta", "rope_local_base_freq"]
    )
    partial = _find(hparams, ["partial_rotary_factor", "rope_pct", "rope_percent"])
    original = _find(hparams, ["original_max_position_embeddings"])
    if "full_attention" not in rope and "sliding_attention" not in rope:
        if local is not None:
            rope["sliding_attention"] = {"rope_theta": local}
        if "rope_theta" not in rope and theta is not None:
            rope["rope_theta"] = theta
        if "rope_type" not in rope and rope.get("type") is not None:
            rope["rope_type"] = rope["type"]
        if "partial_rotary_factor" not in rope and partial is not None:
            rope["partial_rotary_factor"] = partial
        if "original_max_position_embeddings" not in rope and original is not None:
            rope["original_max_position_embeddings"] = original
    return rope


# ---- TextModel.set_gguf_parameters (the RoPE part and the head geometry) ----------------------


def _write_heads(writer, hparams):
    if (n_embd := _find(hparams, ["hidden_size", "n_embd", "dim"])) is not None:
        writer.add_embedding_length(n_embd)
    if (n_head := _find(hparams, _HEAD_COUNT)) is not None:
        writer.add_head_count(n_head)
    if (n_head_kv := _find(hparams, ["num_key_value_heads", "n_kv_heads"])) is not None:
        writer.add_head_count_kv(n_head_kv)


def _write_base(writer, hparams, rope):
    if (n_ctx := _find(hparams, _CONTEXT)) is not None:
        writer.add_context_length(n_ctx)
    _write_heads(writer, hparams)
    params = rope.get("full_attention", rope)
    rope_type = params.get("rope_type")
    factor = params.get("factor")
    if rope_type == "linear" and factor is not None:
        writer.add_rope_scaling_type(RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(factor)
    elif rope_type == "yarn" and factor is not None:
        writer.add_rope_scaling_type(RopeScalingType.YARN)
        writer.add_rope_scaling_factor(factor)
        writer.add_rope_scaling_orig_ctx_len(params["original_max_position_embeddings"])
        if (ext := params.get("extrapolation_factor")) is not None:
            writer.add_rope_scaling_yarn_ext_factor(ext)
        if (attn := params.get("attention_factor", params.get("attn_factor"))) is not None:
            writer.add_rope_scaling_yarn_attn_factor(attn)
        if (beta_fast := params.get("beta_fast")) is not None:
            writer.add_rope_scaling_yarn_beta_fast(beta_fast)
        if (beta_slow := params.get("beta_slow")) is not None:
            writer.add_rope_scaling_yarn_beta_slow(beta_slow)
    elif rope_type in ("su", "longrope"):
        writer.add_rope_scaling_type(RopeScalingType.LONGROPE)
    # "dynamic", "llama3", "default", "mrope", ...: no key (llama3 is a tensor, see _llama3_factors).
    if "mrope_section" in rope:
        sections = list(rope["mrope_section"])
        sections += [0] * (4 - len(sections))
        writer.add_rope_dimension_sections(sections[:4])
    if (theta := params.get("rope_theta")) is not None:
        writer.add_rope_freq_base(theta)
    if (local := rope.get("sliding_attention", {}).get("rope_theta")) is not None:
        writer.add_rope_freq_base_swa(local)
    if (head_dim := hparams.get("head_dim")) is not None:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)


def _write_generic(writer, hparams, rope, model_type):
    """TextModel.set_gguf_parameters alone: qwen.py QwenModel, Qwen2Model; qwenvl.py Qwen2VLModel;
    internlm.py InternLM2Model; and the qwen3vl.py Qwen3VLTextModel / Qwen3Model chain, which adds
    no RoPE key."""
    _write_base(writer, hparams, rope)


# ---- the model classes ----------------------------------------------------------------------


def _head_dim(hparams):
    if (dim := hparams.get("head_dim")) is None:
        dim = hparams["hidden_size"] // hparams["num_attention_heads"]
    return dim


def _llama3_factors(rope, hparams, default_factor):
    """LlamaModel.generate_extra_tensors (llama.py; Exaone4Model's copy in exaone.py with a default
    factor of 16): the per-pair divisor of each frequency, computed in float32 with torch as the
    converter computes it."""
    base = rope.get("rope_theta", 10000.0)
    dim = _head_dim(hparams)
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    factor = rope.get("factor", default_factor)
    low_freq_factor = rope.get("low_freq_factor", 1.0)
    high_freq_factor = rope.get("high_freq_factor", 4.0)
    old_context = rope.get("original_max_position_embeddings", 8192)
    low_freq_wavelen = old_context / low_freq_factor
    high_freq_wavelen = old_context / high_freq_factor
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            factors.append(1)
        elif wavelen > low_freq_wavelen:
            factors.append(factor)
        else:
            smooth = (old_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.array([float(f) for f in factors], dtype=np.float32)


def _add_llama3_tensor(writer, rope, hparams, default_factor=8.0):
    params = rope.get("full_attention", rope)
    if params.get("rope_type", "").lower() == "llama3":
        writer.add_tensor("rope_freqs.weight", _llama3_factors(params, hparams, default_factor))


def _write_llama(writer, hparams, rope, model_type):
    """llama.py LlamaModel.set_gguf_parameters (and its subclasses SmolLM3Model, Llama4Model,
    mistral3.py Ministral3Model): rope.dimension_count = head_dim; llama3 as rope_freqs."""
    _write_base(writer, hparams, rope)
    writer.add_rope_dimension_count(_head_dim(hparams))
    if model_type == "mistral3" and hparams.get("model_type") == "ministral3":
        # Ministral3Model: mscale_all_dim as the YaRN log multiplier, unscaled.
        if rope.get("rope_type") != "yarn":
            raise ConversionRefused("ministral3 without yarn rope_parameters: the converter asserts yarn")
        writer.add_rope_scaling_yarn_log_mul(rope["mscale_all_dim"])
        writer.add_attn_temperature_scale(rope["llama_4_scaling_beta"])
    _add_llama3_tensor(writer, rope, hparams)


def _write_command_r(writer, hparams, rope, model_type):
    """command_r.py CommandR2Model: the context from model_max_length if present; scaling "none"."""
    hparams = dict(hparams, max_position_embeddings=_find(hparams, ["model_max_length", "max_position_embeddings"]))
    _write_base(writer, hparams, rope)
    writer.add_rope_scaling_type(RopeScalingType.NONE)


def _write_deepseek2(writer, hparams, rope, model_type):
    """deepseek.py DeepseekV2Model: MLA geometry (kv_lora_rank default 512), dimension_count =
    qk_rope_head_dim, yarn_log_multiplier = 0.1 * mscale_all_dim."""
    _write_base(writer, hparams, rope)
    kv_lora_rank = hparams.get("kv_lora_rank", 512)
    writer.add_key_length(kv_lora_rank + hparams["qk_rope_head_dim"])
    writer.add_value_length(kv_lora_rank)
    writer.add_key_length_mla(hparams["qk_nope_head_dim"] + hparams["qk_rope_head_dim"])
    writer.add_value_length_mla(hparams["v_head_dim"])
    writer.add_rope_dimension_count(hparams["qk_rope_head_dim"])
    if (mscale_all_dim := rope.get("mscale_all_dim")) is not None:
        writer.add_rope_scaling_yarn_log_mul(0.1 * mscale_all_dim)


def _write_exaone4(writer, hparams, rope, model_type):
    """exaone.py Exaone4Model: the base keys, the sliding window, llama3 as rope_freqs (factor 16
    by default)."""
    _write_base(writer, hparams, rope)
    if hparams.get("sliding_window") is not None:
        writer.add_sliding_window(hparams["sliding_window"])
    _add_llama3_tensor(writer, rope, hparams, default_factor=16.0)


def _write_with_sliding_window(writer, hparams, rope, model_type):
    """gpt_oss.py GptOssModel (always) and olmo.py Olmo2Model (when present): the base keys and
    attention.sliding_window."""
    _write_base(writer, hparams, rope)
    if model_type == "gpt_oss" or "sliding_window" in hparams:
        writer.add_sliding_window(hparams["sliding_window"])


def _write_gemma3(writer, hparams, rope, model_type):
    """gemma.py Gemma3Model: the base keys, then head_dim (default 256) as key_length and the global
    layers' theta (default 1e6) as freq_base, and the sliding window unless the pattern is 1."""
    _write_base(writer, hparams, rope)
    writer.add_context_length(hparams.get("max_position_embeddings", 131072))
    writer.add_head_count(hparams.get("num_attention_heads", 8))
    writer.add_key_length(hparams.get("head_dim", 256))
    writer.add_value_length(hparams.get("head_dim", 256))
    writer.add_rope_freq_base(rope.get("full_attention", rope).get("rope_theta", 1_000_000.0))
    if hparams.get("sliding_window_pattern") != 1:
        writer.add_sliding_window(hparams["sliding_window"])


def _write_gptneox(writer, hparams, rope, model_type):
    """gptneox.py GPTNeoXModel (no base keys): context, rotary_pct of the head; no freq_base."""
    writer.add_context_length(hparams["max_position_embeddings"])
    writer.add_embedding_length(hparams["hidden_size"])
    writer.add_head_count(hparams["num_attention_heads"])
    head = hparams["hidden_size"] // hparams["num_attention_heads"]
    writer.add_rope_dimension_count(int(hparams["rotary_pct"] * head))


def _write_stablelm(writer, hparams, rope, model_type):
    """stablelm.py StableLMModel (no base keys): context, partial_rotary_factor of the head; no
    freq_base."""
    writer.add_context_length(hparams["max_position_embeddings"])
    _write_heads(writer, hparams)
    head = hparams["hidden_size"] // hparams["num_attention_heads"]
    writer.add_rope_dimension_count(int(rope["partial_rotary_factor"] * head))


def _write_phi2(writer, hparams, rope, model_type):
    """phi.py Phi2Model (no base keys): context, int(pct * n_embd) // n_head; no freq_base."""
    n_embd = _find(hparams, ["hidden_size", "n_embd"])
    n_head = _find(hparams, ["num_attention_heads", "n_head"])
    writer.add_context_length(_find(hparams, ["n_positions", "max_position_embeddings"]))
    writer.add_embedding_length(n_embd)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_rope_dimension_count(int(rope["partial_rotary_factor"] * n_embd) // n_head)


def _write_phi3(writer, hparams, rope, model_type):
    """phi.py Phi3MiniModel (no base keys): context, original context, int(pct * n_embd) // n_head,
    freq_base, the sliding window (0 if none); with long factors, the attention factor computed
    from the context ratio and the long/short factor tensors."""
    n_embd = _find(hparams, ["hidden_size", "n_embd"])
    n_head = _find(hparams, ["num_attention_heads", "n_head"])
    max_positions = _find(hparams, ["n_positions", "max_position_embeddings"])
    original = rope["original_max_position_embeddings"]
    rope_dims = int(rope.get("partial_rotary_factor", 1.0) * n_embd) // n_head
    writer.add_context_length(max_positions)
    writer.add_rope_scaling_orig_ctx_len(original)
    writer.add_embedding_length(n_embd)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(_find(hparams, ["num_key_value_heads", "n_head_kv"]))
    writer.add_rope_dimension_count(rope_dims)
    writer.add_rope_freq_base(rope.get("full_attention", rope)["rope_theta"])
    writer.add_sliding_window(hparams.get("sliding_window") or 0)
    long_factors, short_factors = rope.get("long_factor"), rope.get("short_factor")
    if not long_factors:
        return
    scale = max_positions / original
    scaling_type = rope.get("rope_type", "").lower()
    if scaling_type in ("su", "longrope"):
        attn_factor = math.sqrt(1 + math.log(scale) / math.log(original)) if scale > 1.0 else 1.0
    elif scaling_type == "yarn":
        attn_factor = 0.1 * math.log(scale) + 1.0 if scale > 1.0 else 1.0
    else:
        raise ConversionRefused(f"Phi-3 rope type {scaling_type!r}: the converter raises NotImplementedError")
    writer.add_rope_scaling_attn_factors(attn_factor)
    if len(long_factors) != len(short_factors) or len(long_factors) != rope_dims / 2:
        raise ConversionRefused(f"Phi-3 factor lists of {len(long_factors)} for {rope_dims} rotated channels")
    writer.add_tensor("rope_factors_long.weight", np.array(long_factors, dtype=np.float32))
    writer.add_tensor("rope_factors_short.weight", np.array(short_factors, dtype=np.float32))


def _write_qwen35(writer, hparams, rope, model_type):
    """qwen.py Qwen3_5TextModel: Qwen3NextModel's dimension_count = int(head_dim * partial factor
    (default 0.25)); _Qwen35MRopeMixin writes sections [11, 11, 10, 0] when the config has none."""
    _write_base(writer, hparams, rope)
    writer.add_rope_dimension_count(int(_head_dim(hparams) * rope.get("partial_rotary_factor", 0.25)))
    if "mrope_section" not in rope:
        writer.add_rope_dimension_sections([11, 11, 10, 0])


_WRITERS = {
    "llama": _write_llama,
    "mistral": _write_llama,
    "smollm3": _write_llama,
    "llama4": _write_llama,
    "mistral3": _write_llama,
    "cohere": _write_command_r,
    "deepseek_v2": _write_deepseek2,
    "deepseek_v3": _write_deepseek2,
    "exaone4": _write_exaone4,
    "gemma3": _write_gemma3,
    "gpt_neox": _write_gptneox,
    "gpt_oss": _write_with_sliding_window,
    "olmo3": _write_with_sliding_window,
    "phi": _write_phi2,
    "phi3": _write_phi3,
    "qwen3_5": _write_qwen35,
    "stablelm": _write_stablelm,
}
