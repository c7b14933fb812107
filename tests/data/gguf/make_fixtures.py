"""Writes the GGUF test files of this directory with llama.cpp's own writer (gguf-py's GGUFWriter).

Each file holds the RoPE metadata llama.cpp's converter writes for one model (key names as in
llama.cpp commit 0c1e57098, src/llama-arch.cpp), with the numbers of the matching config in
tests/data/configs/, and no weights beyond a token tensor or two. See README.md here.

    python tests/data/gguf/make_fixtures.py [OUTPUT_DIRECTORY]
"""

import json
import math
import pathlib
import sys

import numpy as np
from gguf import GGUFValueType, GGUFWriter, RopeScalingType

HERE = pathlib.Path(__file__).resolve().parent
CONFIGS = HERE.parent / "configs"


def _config(name):
    return json.loads((CONFIGS / f"{name}.json").read_text())


def _write(writer):
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def llama3_factors(head_dim, base, factor, low_freq_factor, high_freq_factor, old_context):
    """The divisor of each pair's frequency, the llama3 rule as llama.cpp's converter stores it.

    Frequencies 1 / base^(2i/dim) in float32; a pair whose wavelength 2*pi/freq is below
    old_context / high_freq_factor keeps its frequency (divisor 1), one above
    old_context / low_freq_factor is divided by `factor`, and between them the divisor is
    1 / ((1 - smooth) / factor + smooth) with
    smooth = (old_context / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor).
    """
    exponents = np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)
    freqs = np.float32(1.0) / (np.float32(base) ** exponents)
    low_freq_wavelen = old_context / low_freq_factor
    high_freq_wavelen = old_context / high_freq_factor
    factors = []
    for freq in freqs:
        wavelen = np.float32(2 * math.pi) / freq
        if wavelen < high_freq_wavelen:
            factors.append(1.0)
        elif wavelen > low_freq_wavelen:
            factors.append(factor)
        else:
            smooth = (old_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(factors, dtype=np.float32)


def _token_embedding(writer):
    """A small F16 tensor ahead of the RoPE tensors, so that theirs do not start at offset 0."""
    writer.add_tensor("token_embd.weight", np.arange(32, dtype=np.float16).reshape(4, 8))


def write_llama31(path):
    """Llama 3.1 8B: llama3 scaling is a rope_freqs tensor, no rope.scaling keys."""
    config = _config("llama-3.1-8b")
    scaling = config["rope_scaling"]
    head_dim = config["hidden_size"] // config["num_attention_heads"]
    writer = GGUFWriter(path, "llama")
    writer.add_block_count(32)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_key_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(config["rope_theta"])
    _token_embedding(writer)
    factors = llama3_factors(
        head_dim,
        config["rope_theta"],
        scaling["factor"],
        scaling["low_freq_factor"],
        scaling["high_freq_factor"],
        scaling["original_max_position_embeddings"],
    )
    writer.add_tensor("rope_freqs.weight", factors)
    _write(writer)


def write_qwen2_yarn(path):
    """Qwen2.5 7B with YaRN: rope.scaling.type yarn, factor, original context; no dimension_count."""
    config = _config("qwen2.5-7b-instruct-yarn")
    scaling = config["rope_scaling"]
    writer = GGUFWriter(path, "qwen2")
    writer.add_block_count(28)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_rope_freq_base(config["rope_theta"])
    writer.add_rope_scaling_type(RopeScalingType.YARN)
    writer.add_rope_scaling_factor(scaling["factor"])
    writer.add_rope_scaling_orig_ctx_len(scaling["original_max_position_embeddings"])
    writer.add_rope_scaling_attn_factors(1.0)
    _write(writer)


def write_phi3_longrope(path):
    """Phi-3.5 mini: the long and short factor tensors, no rope.scaling.type; alignment 64."""
    config = _config("phi-3.5-mini-instruct")
    scaling = config["rope_scaling"]
    n_head = config["num_attention_heads"]
    original = config["original_max_position_embeddings"]
    scale = config["max_position_embeddings"] / original
    writer = GGUFWriter(path, "phi3")
    writer.add_custom_alignment(64)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_rope_dimension_count(config["hidden_size"] // n_head)
    writer.add_rope_freq_base(config["rope_theta"])
    writer.add_rope_scaling_orig_ctx_len(original)
    writer.add_rope_scaling_attn_factors(math.sqrt(1 + math.log(scale) / math.log(original)))
    _token_embedding(writer)
    writer.add_tensor("rope_factors_long.weight", np.array(scaling["long_factor"], dtype=np.float32))
    writer.add_tensor("rope_factors_short.weight", np.array(scaling["short_factor"], dtype=np.float32))
    _write(writer)


def write_qwen2vl(path):
    """Qwen2.5-VL 7B's text model: M-RoPE sections padded to four."""
    config = _config("qwen2.5-vl-7b-instruct")
    text = config.get("text_config", config)
    scaling = text.get("rope_scaling") or config.get("rope_scaling")
    sections = list(scaling["mrope_section"]) + [0] * (4 - len(scaling["mrope_section"]))
    writer = GGUFWriter(path, "qwen2vl")
    writer.add_context_length(text["max_position_embeddings"])
    writer.add_embedding_length(text["hidden_size"])
    writer.add_head_count(text["num_attention_heads"])
    writer.add_head_count_kv(text["num_key_value_heads"])
    writer.add_rope_freq_base(text["rope_theta"])
    writer.add_rope_dimension_sections(sections)
    _write(writer)


def write_vocab_and_types(path):
    """Every value type once, a vocabulary of 1000 strings and a nested array (both read past)."""
    writer = GGUFWriter(path, "llama")
    writer.add_context_length(4096)
    writer.add_uint8("test.uint8", 255)
    writer.add_int8("test.int8", -128)
    writer.add_uint16("test.uint16", 65535)
    writer.add_int16("test.int16", -32768)
    writer.add_uint32("test.uint32", 4294967295)
    writer.add_int32("test.int32", -2147483648)
    writer.add_float32("test.float32", 0.1)
    writer.add_bool("test.bool_true", True)
    writer.add_bool("test.bool_false", False)
    writer.add_string("test.string", "h\u00e9llo")
    writer.add_uint64("test.uint64", 2**63 - 1)
    writer.add_int64("test.int64", -(2**63))
    writer.add_float64("test.float64", 0.1)
    writer.add_array("test.int32_array", [1, -2, 3])
    writer.add_array("test.float32_array", [0.5, -1.5])
    writer.add_array("test.bool_array", [True, False, True])
    writer.add_key_value("test.uint8_array", [0, 7, 255], GGUFValueType.ARRAY, GGUFValueType.UINT8)
    writer.add_key_value("test.float64_array", [0.1, 2.0], GGUFValueType.ARRAY, GGUFValueType.FLOAT64)
    writer.add_array("test.nested_array", [[1, 2], [3]])
    writer.add_array("test.string_array", ["a", "bc"])
    writer.add_token_list([f"t{i}" for i in range(1000)])
    writer.add_token_types([i % 6 for i in range(1000)])
    _write(writer)


def write_f16_rope_freqs(path):
    """A rope_freqs tensor stored as F16, which llama.cpp's loader would refuse and rotary too."""
    writer = GGUFWriter(path, "llama")
    writer.add_context_length(4096)
    writer.add_rope_dimension_count(8)
    writer.add_tensor("rope_freqs.weight", np.array([1, 1, 2, 4], dtype=np.float16))
    _write(writer)


FIXTURES = {
    "llama-3.1-8b.gguf": write_llama31,
    "qwen2-yarn.gguf": write_qwen2_yarn,
    "phi3-longrope.gguf": write_phi3_longrope,
    "qwen2vl.gguf": write_qwen2vl,
    "vocab-and-types.gguf": write_vocab_and_types,
    "llama-f16-rope-freqs.gguf": write_f16_rope_freqs,
}


def write_all(directory):
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, write in FIXTURES.items():
        write(directory / name)


if __name__ == "__main__":
    write_all(sys.argv[1] if len(sys.argv) > 1 else HERE)
