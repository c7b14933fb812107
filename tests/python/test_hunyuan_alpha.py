"""HunYuan's fixed NTK: a dynamic rope dict with `alpha`, against transformers' own class.

HunYuanDenseV1RotaryEmbedding renames such a config's type so that its base is
rope_theta * alpha^(d / (d - 2)) at every length (compute_ntk_alpha_rope_parameters) and no
per-call update follows. rotary reads `alpha` for the HunYuan families only; elsewhere the key is
refused by name, as an unknown rope parameter.
"""

import numpy as np
import pytest
import torch

import rotary

transformers = pytest.importorskip("transformers")
from transformers.models.hunyuan_v1_dense import modeling_hunyuan_v1_dense as hunyuan  # noqa: E402

# The rope dict as HunYuan's published configs give it (rope_scaling {"alpha": 1000.0, "factor": 1.0,
# "type": "dynamic"} with rope_theta 10000), on small layer sizes: the rope part does not depend on
# them. beta_fast / mscale keys that some of these configs carry are transformers rope parameters
# that dynamic NTK does not read.
ROPE = {"alpha": 1000.0, "factor": 1.0, "type": "dynamic"}
CONFIG = {
    "model_type": "hunyuan_v1_dense",
    "hidden_size": 512,
    "num_attention_heads": 4,
    "head_dim": 128,
    "num_key_value_heads": 1,
    "max_position_embeddings": 32768,
    "rope_theta": 10000.0,
    "rope_scaling": ROPE,
}


def _transformers_module():
    config = transformers.AutoConfig.for_model(**CONFIG)
    return hunyuan.HunYuanDenseV1RotaryEmbedding(config)


def test_theta_is_the_alpha_base_at_every_length():
    module = _transformers_module()
    rope = rotary.Rope(CONFIG)
    assert rope.config.alpha == 1000.0
    theirs = module.inv_freq.numpy()
    ulps = np.abs(rope.inv_freq.view(np.int32).astype(np.int64) - theirs.view(np.int32).astype(np.int64))
    assert ulps.max() <= 1, ulps.max()
    # The published formula, written out: base = theta * alpha^(d / (d - 2)), then default RoPE.
    d = 128
    base = 10000.0 * 1000.0 ** (d / (d - 2))
    formula = 1.0 / base ** (np.arange(0, d, 2) / d)
    np.testing.assert_allclose(rope.inv_freq, formula, rtol=3e-7)
    assert not rope._rope.length_dependent


@pytest.mark.parametrize("length", [16, 40000, 100000])  # inside and beyond the trained context
def test_cos_sin_equal_the_module_inside_and_beyond_the_context(length):
    module = _transformers_module()
    rope = rotary.Rope(CONFIG)
    positions = np.arange(length - 16, length)
    x = torch.zeros(1, 16, 128)
    cos, sin = module(x, torch.from_numpy(positions)[None])
    ours_cos, ours_sin = rope.cos_sin(positions)
    np.testing.assert_allclose(ours_cos, cos[0, :, :64].numpy(), atol=2.5e-7)
    np.testing.assert_allclose(ours_sin, sin[0, :, :64].numpy(), atol=2.5e-7)


def test_alpha_outside_hunyuan_is_refused_by_name():
    config = dict(CONFIG, model_type="llama")
    with pytest.raises(rotary.Error) as info:
        rotary.config_from_dict(config)
    assert info.value.argument == "rope_scaling.alpha"


def test_a_bad_alpha_is_named():
    for bad in (-1.0, float("inf")):
        with pytest.raises(rotary.Error, match="alpha"):
            rotary.config_from_dict(dict(CONFIG, rope_scaling=dict(ROPE, alpha=bad)))


def test_inspect_names_the_rule(tmp_path):
    import json
    import os
    import subprocess

    cli = os.environ.get("ROTARY_CLI")
    if not cli or not os.path.exists(cli):
        pytest.skip("the rotary binary is not built (set ROTARY_CLI)")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(CONFIG))
    result = subprocess.run([cli, "inspect", str(path), "--json"], capture_output=True, text=True, check=True)
    report = json.loads(result.stdout)
    assert report["alpha"] == 1000.0
    assert {pair["rule"] for pair in report["pairs"]} == {"NTK alpha 1000"}
    theta = np.array([pair["theta"] for pair in report["pairs"]], np.float32)
    np.testing.assert_array_equal(theta, rotary.Rope(CONFIG).inv_freq)
