"""Which layers rotate (rotary.layer_ropes) against transformers 5.24's own model classes.

For every family whose attention decides per layer whether to apply RoPE, transformers' default
config (or a small variant of it, where the default leaves the rule untested) is given to the
family's own attention class, layer by layer (read from the attribute its forward tests:
`use_rope`, `sliding_window`, `is_local_attention`, ...), or to its whole model, with a hook on
every self-attention recording whether the decoder passed it position embeddings. rotary reads
the same config through `layer_ropes` (the dict transformers' config writes, as a user's
config.json holds it). Then the stored real configs: Llama-4-Scout (its default NoPE interval),
SmolLM3-3B (an explicit `no_rope_layers`); and Gemma 3's default (a RoPE per layer type, the
types derived from its sliding-window pattern).
"""

import importlib
import json
import os
import warnings

import pytest
import torch

import rotary
from hf_reference import CONFIG_DIR

transformers = pytest.importorskip("transformers")
from transformers import AutoConfig, AutoModel  # noqa: E402


def _default(model_type, **overrides):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AutoConfig.for_model(model_type, **overrides)


def _rotary_rotates(config):
    return [layer["rope"] is not None for layer in rotary.layer_ropes(config.to_dict())]


# (family folder, model_type, attention class, whether an instance rotates (its forward's test),
# config overrides)
ATTENTION = [
    ("afmoe", "afmoe", "AfmoeAttention", lambda a: a.is_local_attention, {}),
    ("cohere2", "cohere2", "Cohere2Attention", lambda a: a.sliding_window is not None, {}),
    ("exaone4", "exaone4", "Exaone4Attention", lambda a: a.sliding_window is None or a.is_sliding, {}),
    (
        "exaone4",
        "exaone4",
        "Exaone4Attention",
        lambda a: a.sliding_window is None or a.is_sliding,
        {"sliding_window": None, "layer_types": ["full_attention"] * 32},
    ),
    ("exaone_moe", "exaone_moe", "ExaoneMoeAttention", lambda a: a.sliding_window is None or a.is_sliding, {}),
    ("kolibri1", "kolibri1", "Kolibri1Attention", lambda a: a.sliding_window is None or a.is_sliding, {}),
    ("flint", "flint", "FlintAttention", lambda a: a.sliding_window is not None, {}),
    ("llama4", "llama4_text", "Llama4TextAttention", lambda a: bool(a.use_rope), {}),
    ("smollm3", "smollm3", "SmolLM3Attention", lambda a: bool(a.use_rope), {}),
    ("smollm3", "smollm3", "SmolLM3Attention", lambda a: bool(a.use_rope), {"no_rope_layer_interval": 3}),
    ("mistral_large4", "mistral_large4_text", "MistralLarge4TextAttention", lambda a: bool(a.use_rope), {}),
]


@pytest.mark.parametrize(
    "folder, model_type, attention, rotates, overrides", ATTENTION, ids=[f"{a[1]}-{i}" for i, a in enumerate(ATTENTION)]
)
def test_layers_rotate_as_the_attention_class_decides(folder, model_type, attention, rotates, overrides):
    config = _default(model_type, **overrides)
    cls = getattr(importlib.import_module(f"transformers.models.{folder}.modeling_{folder}"), attention)
    with torch.device("meta"):
        theirs = [bool(rotates(cls(config, layer_idx=i))) for i in range(config.num_hidden_layers)]
    assert _rotary_rotates(config) == theirs
    assert not all(theirs) or overrides  # the default configs test a mixed stack


_TINY = dict(
    hidden_size=64, intermediate_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=128
)
_MOE = dict(moe_intermediate_size=32, num_experts_per_tok=2)

# model_type, overrides (the layer count and per-layer lists untouched, the widths made tiny)
DECODERS = [
    ("beam", dict(_MOE, num_experts=4, n_group=1, topk_group=1)),
    ("granite_swa", dict(num_hidden_layers=8, layer_rope_theta=[1e4, 0, 5e4, 0, 1e4, 1e4, 0, 1e6])),
    ("lara_mini", {}),
    ("muse_glimmer_text", {}),
    ("olmo_hybrid", dict(pad_token_id=0)),
    ("olmo_hybrid", dict(pad_token_id=0, rope_parameters={"rope_type": "default", "rope_theta": None})),
    (
        "granitemoehybrid",
        dict(
            num_hidden_layers=6, layer_types=["linear_attention", "full_attention"] * 3, position_embedding_type="rope"
        ),
    ),
]


def _decoder_rotates(config):
    """{layer: whether the model passed position embeddings to its self-attention}."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModel.from_config(config).eval()
    seen = {}

    def hook(module, args, kwargs):
        seen[module.layer_idx] = kwargs.get("position_embeddings") is not None

    for name, module in model.named_modules():
        if name.endswith("self_attn"):
            module.register_forward_pre_hook(hook, with_kwargs=True)
    with torch.no_grad():
        model(input_ids=torch.randint(0, 100, (1, 8)))
    return seen


@pytest.mark.parametrize("model_type, overrides", DECODERS, ids=[f"{d[0]}-{i}" for i, d in enumerate(DECODERS)])
def test_layers_rotate_as_the_decoder_decides(model_type, overrides):
    config = _default(model_type, **{**_TINY, **overrides})
    theirs = _decoder_rotates(config)
    layers = rotary.layer_ropes(config.to_dict())
    assert len(layers) == config.num_hidden_layers
    assert {i: layers[i]["rope"] is not None for i in theirs} == theirs
    thetas = getattr(config, "layer_rope_theta", None)
    if model_type == "granite_swa":  # each rotating layer by its own base; one config for all is refused
        assert [layer["rope"].rope_theta for layer in layers if layer["rope"]] == [t for t in thetas if t]
        with pytest.raises(rotary.Error, match="layer_rope_theta"):
            rotary.config_from_dict(config.to_dict())


def test_a_model_without_rope_rotates_no_layer():
    # Zamba2's shared attention block rotates only with use_mem_rope (Zamba2Attention).
    assert not any(_rotary_rotates(_default("zamba2")))
    assert all(_rotary_rotates(_default("zamba2", use_mem_rope=True)))


def _stored(name):
    with open(os.path.join(CONFIG_DIR, name), encoding="utf-8") as f:
        return json.load(f)


def test_stored_configs():
    # Llama-4-Scout's config states no NoPE layers: Llama4TextConfig's interval of 4 applies.
    scout = rotary.layer_ropes(_stored("llama-4-scout-17b-16e-instruct.json"))
    assert [i for i, layer in enumerate(scout) if layer["rope"] is None] == list(range(3, 48, 4))
    assert scout[0]["rope"].rope_type == "llama3"
    # SmolLM3-3B lists them.
    smol = _stored("smollm3-3b.json")
    assert [layer["rope"] is not None for layer in rotary.layer_ropes(smol)] == [
        bool(x) for x in smol["no_rope_layers"]
    ]
    # Gemma 3 (its default config; the stored one keeps no layer count): every layer rotates, by its
    # layer type's RoPE, the types as Gemma3TextConfig derives them from sliding_window_pattern.
    # Written as a v4 config.json states it (Gemma 3 12B's: "sliding_window_pattern": 6).
    theirs = _default("gemma3_text")
    ours = {k: v for k, v in theirs.to_dict().items() if k not in ("layer_types", "_sliding_window_pattern")}
    ours["sliding_window_pattern"] = _stored("gemma-3-12b-it.json")["text_config"]["sliding_window_pattern"]
    layers = rotary.layer_ropes(ours)
    assert [layer["layer_type"] for layer in layers] == theirs.layer_types
    bases = {layer["layer_type"]: layer["rope"].rope_theta for layer in layers}
    assert bases == {t: theirs.rope_parameters[t]["rope_theta"] for t in set(theirs.layer_types)}


def test_what_the_rule_needs_is_named():
    with pytest.raises(rotary.Error, match="num_hidden_layers"):
        rotary.layer_ropes({"model_type": "llama", "head_dim": 64})
    with pytest.raises(rotary.Error, match=r"no_rope_layers"):
        rotary.layer_ropes(
            {"model_type": "smollm3", "head_dim": 64, "num_hidden_layers": 4, "no_rope_layers": [1, 1, 0]}
        )
    with pytest.raises(rotary.Error, match="layer_types"):
        rotary.layer_ropes({"model_type": "cohere2", "head_dim": 64, "num_hidden_layers": 4, "sliding_window": 8})
    with pytest.raises(rotary.Error, match="cohere2_moe"):
        rotary.layer_ropes(_default("cohere2_moe").to_dict())
