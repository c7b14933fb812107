"""Multi-axis RoPE against transformers: M-RoPE (Qwen2-VL / Qwen2.5-VL chunked sections, Qwen3-VL /
Qwen3.5 interleaved) and the 2D axial RoPE of vision towers (Qwen2-VL, Pixtral), on the stored real
configs, with transformers' own rotary modules, apply functions and position-id builders.

Tolerances, as in test_conformance.py:
- position ids: equal (integers).
- cos/sin with transformers' own inv_freq, hf angle mode: within 1e-6 absolute (both take
  float32(p) * theta in one float32 multiply; torch's vectorised cos/sin is not correctly rounded,
  rotary's is, so they differ in the last bit). An axis mix-up moves angles by whole radians.
- rotated q/k, float32: max |rotary - transformers| / max |transformers| <= 1e-6.
- the vision towers rotate in float32 too (Qwen2-VL's apply upcasts; Pixtral's cos/sin stay float32
  for float32 inputs).
"""

import types

import numpy as np
import pytest
import torch

import rotary
from compare import check_abs, check_relative_to_max, record
from hf_reference import load_record as _record

transformers = pytest.importorskip("transformers")
from transformers import vision_utils  # noqa: E402
from transformers.models.llama4 import modeling_llama4  # noqa: E402
from transformers.models.llama4.configuration_llama4 import Llama4VisionConfig  # noqa: E402
from transformers.models.pixtral import modeling_pixtral  # noqa: E402
from transformers.models.pixtral.configuration_pixtral import PixtralVisionConfig  # noqa: E402
from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl  # noqa: E402
from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import Qwen2_5_VLTextConfig  # noqa: E402
from transformers.models.qwen2_vl import modeling_qwen2_vl  # noqa: E402
from transformers.models.qwen2_vl.configuration_qwen2_vl import Qwen2VLVisionConfig  # noqa: E402
from transformers.models.qwen3_5 import modeling_qwen3_5  # noqa: E402
from transformers.models.qwen3_5.configuration_qwen3_5 import Qwen3_5TextConfig  # noqa: E402
from transformers.models.qwen3_vl import modeling_qwen3_vl  # noqa: E402
from transformers.models.qwen3_vl.configuration_qwen3_vl import (  # noqa: E402
    Qwen3VLTextConfig,
    Qwen3VLVisionConfig,
)


def _text_fields(config):
    fields = dict(config.get("text_config", config))
    for key in ("model_type", "vision_config", "architectures", "torch_dtype", "dtype"):
        fields.pop(key, None)
    return fields


# ---- position ids ---------------------------------------------------------------------------------


def _hf_rope_index(model_class, segments, merge, tokens_per_second=2, second_per_grid=None):
    """transformers' get_rope_index for a prompt described like rotary.mrope_positions' segments."""
    fake = types.SimpleNamespace(
        config=types.SimpleNamespace(
            vision_config=types.SimpleNamespace(spatial_merge_size=merge, tokens_per_second=tokens_per_second)
        )
    )
    fake.get_vision_position_ids = types.MethodType(model_class.get_vision_position_ids, fake)
    token_types, images, videos = [], [], []
    for segment in segments:
        if isinstance(segment, int):
            token_types += [0] * segment
        else:
            grid = segment["grid"] if isinstance(segment, dict) else segment
            kind = 2 if isinstance(segment, dict) else 1
            (videos if kind == 2 else images).append(grid)
            token_types += [kind] * (grid[0] * grid[1] * grid[2] // merge**2)
    ids = torch.zeros(1, len(token_types), dtype=torch.int64)
    kwargs = dict(
        image_grid_thw=torch.tensor(images) if images else None, video_grid_thw=torch.tensor(videos) if videos else None
    )
    if second_per_grid is not None:
        kwargs["second_per_grid_ts"] = torch.tensor(second_per_grid)
    position_ids, delta = model_class.get_rope_index(
        fake, ids, torch.tensor([token_types], dtype=torch.int32), **kwargs
    )
    return position_ids[:, 0].numpy(), int(delta[0, 0])


PROMPT = [5, (1, 8, 12), 7, (1, 6, 4), 3]


@pytest.mark.parametrize(
    "model_class", [modeling_qwen2_vl.Qwen2VLModel, modeling_qwen3_vl.Qwen3VLModel], ids=["qwen2_vl", "qwen3_vl"]
)
def test_mrope_positions_equal_get_rope_index(model_class):
    expected, expected_delta = _hf_rope_index(model_class, PROMPT, 2)
    got, delta = rotary.mrope_positions(PROMPT, spatial_merge_size=2)
    np.testing.assert_array_equal(got, expected)
    assert delta == expected_delta


def test_mrope_positions_of_a_qwen2_5_vl_video():
    # Two frames 0.5 s apart per temporal patch at tokens_per_second 2: frames sit 1 position apart;
    # 0.7 s gives 1.4, truncated.
    for seconds in (0.5, 0.7, 2.0):
        prompt = [4, {"grid": (4, 4, 6)}, 2]
        expected, expected_delta = _hf_rope_index(
            modeling_qwen2_5_vl.Qwen2_5_VLModel, prompt, 2, tokens_per_second=2, second_per_grid=[seconds]
        )
        got, delta = rotary.mrope_positions(
            [4, {"grid": (4, 4, 6), "time_interval": 2 * seconds}, 2], spatial_merge_size=2
        )
        np.testing.assert_array_equal(got, expected)
        assert delta == expected_delta


@pytest.mark.parametrize("merge", [1, 2])
def test_vision_patch_positions_equal_transformers(merge):
    grids = [(1, 4, 6), (2, 8, 4)]
    expected = vision_utils.get_vision_position_ids(torch.tensor(grids), merge).numpy().T
    np.testing.assert_array_equal(rotary.vision_patch_positions(grids, merge), expected)


# ---- language models: M-RoPE ---------------------------------------------------------------------


def _text_case(name):
    config = _record(name)["config"]
    """(transformers config, rotary module class, apply module, layer type)."""
    if name.startswith("qwen2.5-vl"):
        return (
            Qwen2_5_VLTextConfig(**_text_fields(config)),
            modeling_qwen2_5_vl.Qwen2_5_VLRotaryEmbedding,
            modeling_qwen2_5_vl,
            None,
        )
    if name.startswith("qwen3-vl"):
        return (
            Qwen3VLTextConfig(**_text_fields(config)),
            modeling_qwen3_vl.Qwen3VLTextRotaryEmbedding,
            modeling_qwen3_vl,
            None,
        )
    return (
        Qwen3_5TextConfig(**_text_fields(config)),
        modeling_qwen3_5.Qwen3_5TextRotaryEmbedding,
        modeling_qwen3_5,
        "full_attention",
    )


@pytest.mark.parametrize("name", ["qwen2.5-vl-7b-instruct.json", "qwen3-vl-4b-instruct.json", "qwen3.5-9b.json"])
def test_mrope_rotation_equals_transformers(name):
    record_ = _record(name)
    hf_config, module_class, modeling, layer_type = _text_case(name)
    module = module_class(hf_config)
    position_ids, _ = rotary.mrope_positions(PROMPT, spatial_merge_size=2)
    # A long prompt too: the image at position 100000.
    far, _ = rotary.mrope_positions([100000, (1, 8, 12), 3], spatial_merge_size=2)
    for ids in (position_ids, far[:, -60:]):
        hf_cos, hf_sin = module(torch.zeros(1), torch.from_numpy(ids)[:, None, :])
        rope = rotary.Rope(record_["config"], layer_type=layer_type, inv_freq=module.inv_freq.numpy())
        assert rope.num_axes == 3
        cos, sin = rope.cos_sin(ids)
        half = rope.rotary_dim // 2
        cos_stats = check_abs(record_["model"], "M-RoPE cos", hf_cos[0, :, :half], cos, 1e-6)
        check_abs(record_["model"], "M-RoPE sin", hf_sin[0, :, :half], sin, 1e-6)

        seq = ids.shape[1]
        heads, kv_heads, head_dim = 4, 2, rope.head_dim
        gen = torch.Generator().manual_seed(1)
        q = torch.randn(1, heads, seq, head_dim, generator=gen)
        k = torch.randn(1, kv_heads, seq, head_dim, generator=gen)
        hf_q, hf_k = modeling.apply_rotary_pos_emb(q, k, hf_cos, hf_sin)
        rq, rk = q.clone(), k.clone()
        rope.rotate(rq, ids[:, None, :], k=rk, layout="bhsd")
        stats = check_relative_to_max(record_["model"], "M-RoPE q", hf_q, rq, 1e-6)
        check_relative_to_max(record_["model"], "M-RoPE k", hf_k, rk, 1e-6)
    # rotary's own frequencies, position ids from the batch dimension broadcast.
    own = rotary.Rope(record_["config"], layer_type=layer_type)
    np.testing.assert_allclose(own.inv_freq, module.inv_freq.numpy(), rtol=2e-7)
    row = record_["model"] + " (3-axis ids)"
    record(row, "cos/sin max err (hf theta)", f"{cos_stats.worst:.1e}")
    record(row, "q/k f32 rel err", f"{stats.worst:.1e}")


def test_text_positions_reduce_to_one_axis():
    """transformers expands 2-D position_ids to three equal rows; rotary takes one row as the same."""
    rope = rotary.Rope(_record("qwen2.5-vl-7b-instruct.json")["config"])
    q = np.random.default_rng(0).standard_normal((9, 2, 128)).astype(np.float32)
    one, three = q.copy(), q.copy()
    positions = np.arange(9) * 7
    rope.rotate(one, positions)
    rope.rotate(three, np.stack([positions] * 3))
    np.testing.assert_array_equal(one, three)


# ---- vision towers: 2D axial RoPE -----------------------------------------------------------------


def _vision_check(model, rope, hf_cos, hf_sin, apply, positions):
    half = rope.rotary_dim // 2
    cos, sin = rope.cos_sin(positions)
    cos_stats = check_abs(model, "2D cos", hf_cos[..., :half].reshape(-1, half), cos, 1e-6)
    check_abs(model, "2D sin", hf_sin[..., :half].reshape(-1, half), sin, 1e-6)
    n = positions.shape[1]
    gen = torch.Generator().manual_seed(2)
    q = torch.randn(n, 3, rope.head_dim, generator=gen)
    k = torch.randn(n, 3, rope.head_dim, generator=gen)
    hf_q, hf_k = apply(q, k)
    rq, rk = q.clone(), k.clone()
    rope.rotate(rq, positions, k=rk, layout="shd")
    stats = check_relative_to_max(model, "2D q", hf_q, rq, 1e-6)
    check_relative_to_max(model, "2D k", hf_k, rk, 1e-6)
    record(model, "cos/sin max err (hf theta)", f"{cos_stats.worst:.1e}")
    record(model, "q/k f32 rel err", f"{stats.worst:.1e}")


QWEN_TOWERS = [
    # record, its tower's head_dim, transformers config class and width field, modeling module
    ("qwen2.5-vl-7b-instruct.json", 1280 // 16, Qwen2VLVisionConfig, "embed_dim", modeling_qwen2_vl),
    ("qwen3-vl-4b-instruct.json", 1024 // 16, Qwen3VLVisionConfig, "hidden_size", modeling_qwen3_vl),
]


@pytest.mark.parametrize(
    "name, head_dim, config_class, width_field, modeling", QWEN_TOWERS, ids=["qwen2.5-vl", "qwen3-vl"]
)
def test_qwen_vision_tower_equals_transformers(name, head_dim, config_class, width_field, modeling):
    record_ = _record(name)
    vision = record_["config"]["vision_config"]
    hf_config = config_class(
        **{width_field: vision["hidden_size"]},
        num_heads=vision["num_heads"],
        spatial_merge_size=vision["spatial_merge_size"],
    )
    module_class = next(getattr(modeling, n) for n in dir(modeling) if n.endswith("VisionRotaryEmbedding"))
    module = module_class(hf_config)
    grids = [(1, 8, 12), (2, 4, 4)]
    hf_positions = vision_utils.get_vision_position_ids(torch.tensor(grids), vision["spatial_merge_size"])
    hf_cos, hf_sin = module(torch.zeros(1), hf_positions)
    rope = rotary.Rope(record_["config"], vision=True)
    assert (rope.head_dim, rope.num_axes, rope.config.axial_frequencies) == (head_dim, 2, "shared")
    np.testing.assert_allclose(rope.inv_freq[: head_dim // 4], module.inv_freq.numpy(), rtol=2e-7)
    positions = rotary.vision_patch_positions(grids, vision["spatial_merge_size"])
    _vision_check(
        record_["model"] + " (vision tower, 2D)",
        rope,
        hf_cos,
        hf_sin,
        lambda q, k: modeling.apply_rotary_pos_emb_vision(q, k, hf_cos, hf_sin),
        positions,
    )


def test_pixtral_vision_tower_equals_transformers():
    # Devstral-Small-2's Pixtral tower (head_dim 64, rope_parameters.rope_theta 10000); a
    # 1540-pixel image of 14-pixel patches has up to 110 x 110 patches.
    record_ = _record("devstral-small-2-24b-instruct.json")
    vision = record_["config"]["vision_config"]
    hf_config = PixtralVisionConfig(**{k: v for k, v in vision.items() if k != "model_type"})
    module = modeling_pixtral.PixtralVisionRotaryEmbedding(hf_config)
    rows, cols = np.meshgrid(np.arange(40), np.arange(110), indexing="ij")
    hf_positions = torch.from_numpy(np.stack([rows.ravel(), cols.ravel()], axis=-1))
    hf_cos, hf_sin = module(torch.zeros(1), hf_positions)
    rope = rotary.Rope(record_["config"], vision=True)
    assert (rope.head_dim, rope.config.axial_frequencies) == (64, "alternating")
    np.testing.assert_array_equal(rotary.vision_patch_positions([(1, 40, 110)]), hf_positions.numpy().T)

    def apply(q, k):  # (patches, heads, head_dim) -> transformers' (heads, patches, head_dim)
        hq, hk = modeling_pixtral.apply_rotary_pos_emb(
            q.transpose(0, 1), k.transpose(0, 1), hf_cos, hf_sin, unsqueeze_dim=0
        )
        return hq.transpose(0, 1), hk.transpose(0, 1)

    _vision_check(record_["model"] + " (Pixtral vision tower, 2D)", rope, hf_cos, hf_sin, apply, hf_positions.numpy().T)


def llama4_patch_positions(side):
    """Llama 4's vision positions for a side x side image: patches in raster order at (row + 1,
    column + 1), then the class token at (0, 0), which does not turn
    (Llama4VisionRotaryEmbedding._compute_freqs_ci; the class token is the last token)."""
    patches = rotary.vision_patch_positions([(1, side, side)]) + 1
    return np.concatenate([patches, np.zeros((2, 1), dtype=np.int64)], axis=1)


def test_llama4_vision_tower_equals_transformers():
    # Llama-4-Scout's tower: head_dim 1408 / 16 = 88, a 336-pixel image of 14-pixel patches (24 x 24),
    # rope_theta 10000; Qwen2-VL's shared frequencies with the columns' first, pairs (2j, 2j + 1).
    record_ = _record("llama-4-scout-17b-16e-instruct.json")
    vision = record_["config"]["vision_config"]
    hf_config = Llama4VisionConfig(**{k: v for k, v in vision.items() if k != "model_type"})
    freqs_ci = modeling_llama4.Llama4VisionRotaryEmbedding(hf_config)(torch.zeros(1))  # (577, 1, 44) complex
    rope = rotary.Rope(record_["config"], vision=True)
    assert (rope.head_dim, rope.layout, rope.config.axial_columns_first) == (88, "interleaved", True)
    positions = llama4_patch_positions(336 // 14)
    assert positions.shape == (2, freqs_ci.shape[0])

    def apply(q, k):  # Llama4VisionAttention rotates (batch, patches, heads, head_dim)
        hq, hk = modeling_llama4.vision_apply_rotary_emb(q[None], k[None], freqs_ci[:, 0])
        return hq[0], hk[0]

    _vision_check(
        record_["model"] + " (Llama 4 vision tower, 2D)", rope, freqs_ci.real, freqs_ci.imag, apply, positions
    )


# ---- the API ----------------------------------------------------------------------------------------


def test_multi_axis_positions_in_every_layout_and_dtype():
    """(3, batch, seq) ids in BSHD and BHSD, f32/f16/bf16, equal the per-entry (3, seq) calls."""
    rope = rotary.Rope(_record("qwen2.5-vl-7b-instruct.json")["config"])
    ids = np.stack([rotary.mrope_positions(PROMPT)[0], rotary.mrope_positions(PROMPT[::-1])[0]], axis=1)
    seq = ids.shape[-1]
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        for layout in ("bshd", "bhsd"):
            shape = (2, seq, 3, 128) if layout == "bshd" else (2, 3, seq, 128)
            q = torch.randn(shape).to(dtype)
            batched = q.clone()
            rope.rotate(batched, ids, layout=layout)
            for b in range(2):
                single = q[b].clone()
                rope.rotate(single, ids[:, b], layout=layout[1:])
                assert torch.equal(batched[b], single), (dtype, layout, b)


def test_multi_axis_errors():
    rope = rotary.Rope(_record("qwen2.5-vl-7b-instruct.json")["config"])
    q = np.zeros((4, 1, 128), dtype=np.float32)
    with pytest.raises(rotary.Error, match="positions"):
        rope.rotate(q, np.zeros((2, 4), dtype=np.int64))  # two rows for a three-axis RoPE
    plain = rotary.Rope({"head_dim": 128})
    with pytest.raises(rotary.Error, match="positions"):
        plain.rotate(q, np.zeros((3, 4), dtype=np.int64))
    with pytest.raises(rotary.Error, match=r"segments\[1\]"):
        rotary.mrope_positions([3, (1, 5, 4)], spatial_merge_size=2)
    with pytest.raises(rotary.Error, match="vision_config"):
        rotary.config_from_dict({"head_dim": 64}, vision=True)


def test_multi_axis_autograd():
    """rotary.torch.apply_rotary with (3, seq) ids: the backward pass is the inverse rotation."""
    import rotary.torch as rtorch

    rope = rotary.Rope(_record("qwen2.5-vl-7b-instruct.json")["config"])
    ids, _ = rotary.mrope_positions(PROMPT)
    q = torch.randn(ids.shape[1], 2, 128, dtype=torch.float64).float().requires_grad_()
    out = rtorch.apply_rotary(q, None, ids, rope, layout="shd")
    expected = q.detach().clone()
    rope.rotate(expected, ids)
    assert torch.equal(out, expected)
    grad = torch.randn_like(out)
    out.backward(grad)
    back = grad.clone()
    rope.rotate(back, ids, inverse=True)
    assert torch.equal(q.grad, back)
