"""rotary.patch on the M-RoPE families (3-axis position ids) and on models with a vision tower.

Each family's composite vision-language model is built offline from its default config at toy
sizes: a 2-layer text model (hidden 64, head 16, base 100) whose ``mrope_section`` fits the toy
head (the default sections are sized for heads of 128 and more), a 1-block vision tower. Patched
with ``keep_vision=True``, it must give the unpatched model's logits (1e-5, float32) on text-only
input and on 3-axis position ids whose axes differ, and the same greedy ``generate()`` tokens; the
vision towers keep transformers' RoPE, the very objects, and without ``keep_vision`` the model is
refused by name. Two families run at the real head size without an ``mrope_section`` (the RoPE
module's default), and one Qwen2-VL runs a tiny image end to end, its position ids made by the
model's own ``get_rope_index``. Expected values come from transformers' unpatched model, never
from rotary. Runtime: about 20 s on 2 shared cores (19 tests).
"""

import importlib
import warnings

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import rotary  # noqa: E402
from rotary import _patch  # noqa: E402

TOLERANCE = 1e-5
TEXT = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=128,
    head_dim=16,
    pad_token_id=0,
    num_experts=4,
    num_experts_per_tok=2,
    moe_intermediate_size=32,
    shared_expert_intermediate_size=32,
    # Hybrid families' linear-attention layers (Gated DeltaNet), at toy sizes too.
    linear_key_head_dim=16,
    linear_value_head_dim=16,
    linear_num_key_heads=2,
    linear_num_value_heads=2,
)
# Names differ between the vision configs; each takes the ones it knows. The merger's output is
# the text hidden size: out_hidden_size where a config has one, hidden_size in Qwen2-VL's.
VISION = dict(
    depth=1,
    embed_dim=32,
    hidden_size=32,
    intermediate_size=64,
    num_heads=2,
    out_hidden_size=64,
    fullatt_block_indexes=[0],
    deepstack_visual_indexes=[],
    patch_size=2,
    spatial_merge_size=2,
    temporal_patch_size=2,
)
VISION_EXTRA = {"qwen2_vl": dict(hidden_size=64)}
# Sections (pairs per axis: temporal, height, width) that fit the toy rotary half-width. For the
# interleaved layout (Qwen3-VL and later) every axis but the first takes every third pair, so
# 3 * section stays within the half-width.
SECTIONS = {8: [4, 2, 2], 4: [2, 1, 1]}
# ERNIE-4.5-VL interleaves the height and width pairs one by one, so their sections are equal.
FAMILY_SECTIONS = {"ernie4_5_vl_moe": [3, 3, 2]}
# Per-family sizes the defaults tie to their full-size model.
EXTRA = {
    "ernie4_5_vl_moe": dict(moe_intermediate_size=[32, 32]),  # text experts, vision experts
    "glm_image": dict(vision_vocab_size=128),  # its head predicts image tokens; generate feeds them back
    "qwen4_exp": dict(
        indexer_n_heads=2,
        indexer_kv_heads=1,
        indexer_head_dim=16,
        indexer_budget=8,
        indexer_compress_ratio=2,
        ngram_vocab_size_base=256,
        hc_count=2,
        split_ngram_parts=2,
    ),
}
# Vision towers without a RoPE module of their own (learned or no position embeddings).
NO_VISION_ROPE = {"cosmos3_edge", "glm_image"}
MROPE_FAMILIES = [
    "cosmos3_edge",
    "ernie4_5_vl_moe",
    "glm4v",
    "glm_image",
    "glm_ocr",
    "paddleocr_vl",
    "qwen2_5_vl",
    "qwen2_vl",
    "qwen3_5",
    "qwen3_5_moe",
    "qwen3_vl",
    "qwen3_vl_moe",
    "qwen4_exp",
]


def toy_text_config(default, model_type, sections=None, **overrides):
    """The family's text config at toy sizes, with an mrope_section that fits the toy head
    (`sections`, or none at all with sections="absent": the RoPE module's default then)."""
    rope = dict(default.rope_parameters)
    partial = rope.get("partial_rotary_factor", 1.0)
    head_dim = 16 if partial == 1.0 else 32  # a quarter of 32 still leaves 4 pairs for 3 axes
    if sections == "absent":
        rope.pop("mrope_section", None)
    else:
        rope["mrope_section"] = sections or FAMILY_SECTIONS.get(model_type) or SECTIONS[int(head_dim * partial) // 2]
    # A small base, so that the low-frequency pairs the height and width axes get still turn by a
    # visible angle over a toy sequence (at the default 10^4..10^8 they barely move the logits).
    rope["rope_theta"] = 100.0
    sizes = dict(TEXT, rope_parameters=rope, head_dim=head_dim, **EXTRA.get(model_type, {}))
    if getattr(default, "layer_types", None):  # hybrids: one linear-attention layer, one that rotates
        kinds = sorted(set(default.layer_types))
        linear = [kind for kind in kinds if "linear" in kind]
        rotating = [kind for kind in kinds if "linear" not in kind]
        sizes["layer_types"] = linear[:1] + rotating[:1] if linear else rotating[:1] * 2
    return dict(default.to_dict(), **dict(sizes, **overrides))


def build(model_type, sections=None, text=None, vision=None, **outer_overrides):
    """The family's vision-language model (text, vision tower and any other sub-model), seeded;
    `text` and `vision` override sizes of the sub-configs."""
    default = transformers.AutoConfig.for_model(model_type)
    text = toy_text_config(default.get_text_config(decoder=True), model_type, sections, **(text or {}))
    vision = dict(VISION, **dict(VISION_EXTRA.get(model_type, {}), **(vision or {})))
    vision = type(default.vision_config)(**vision).to_dict()
    if hasattr(default, "vq_config"):  # GLM-Image's image tokenizer
        outer_overrides["vq_config"] = dict(embed_dim=32, num_embeddings=64, latent_channels=32)
    config = type(default)(text_config=text, vision_config=vision, **outer_overrides)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = transformers.AutoModelForImageTextToText.from_config(config)
        except ValueError:  # GLM-Image generates images: no image-text-to-text auto class
            modeling = importlib.import_module(f"transformers.models.{model_type}.modeling_{model_type}")
            model = next(getattr(modeling, n) for n in dir(modeling) if n.endswith("ForConditionalGeneration"))(config)
    return model.eval()


def left_padded_batch():
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 100, (2, 7), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, :3] = 0
    ids[0, :3] = 0
    return ids, mask


def three_axis_positions(batch, seq):
    """(3, batch, seq) M-RoPE position ids whose temporal, height and width rows all differ."""
    steps = torch.arange(seq)
    rows = [steps, (2 * steps) % 5, (3 * steps + 1) % 7]
    return torch.stack(rows)[:, None].expand(3, batch, seq).contiguous()


def run(model, ids, mask):
    """(text-only logits, logits on distinct 3-axis ids, logits on 3 equal axes, generated tokens)."""
    positions = three_axis_positions(*ids.shape)
    with torch.no_grad():
        text = model(input_ids=ids, attention_mask=mask).logits
        mrope = model(input_ids=ids, position_ids=positions).logits
        flat = model(input_ids=ids, position_ids=positions[:1].expand(3, -1, -1)).logits
        tokens = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False, pad_token_id=0)
    return text, mrope, flat, tokens


def instance_state(model):
    """Every submodule's instance attributes, by identity: what unpatch must restore exactly. The
    rope_deltas a VL model's forward caches are left out: every forward rewrites them, patched or not."""
    state = {name: dict(vars(module)) for name, module in model.named_modules()}
    for attributes in state.values():
        attributes.pop("rope_deltas", None)
    return state


def assert_same_objects(before, after):
    assert before.keys() == after.keys()
    for name, attributes in before.items():
        assert attributes.keys() == after[name].keys(), name
        for key, value in attributes.items():
            assert after[name][key] is value, f"{name}.{key}"


def vision_ropes(model):
    """{path: module} of the RoPE modules the family sweep marks as a vision tower's."""
    vision = {r["module"] for r in rotary.families() if r["kind"] != "text"}
    return {path: m for path, m in model.named_modules() if type(m).__name__ in vision}


def max_diff(a, b):
    return (a - b).abs().max().item()


@pytest.mark.parametrize("model_type", MROPE_FAMILIES)
def test_mrope_family_patched_equals_transformers(model_type):
    model = build(model_type)
    ids, mask = left_padded_batch()
    want = run(model, ids, mask)
    before = instance_state(model)
    towers = vision_ropes(model)
    assert bool(towers) == (model_type not in NO_VISION_ROPE)
    if towers:  # refused by name, unchanged, unless the caller keeps the vision RoPE
        with pytest.raises(rotary.Error, match=f"model_type '{model_type}'.*vision tower"):
            rotary.patch(model)
        assert_same_objects(before, instance_state(model))

    rotary.patch(model, keep_vision=True)
    sources = _patch._PATCHES[model].sources
    with torch.no_grad():
        model(input_ids=ids, position_ids=three_axis_positions(*ids.shape))
    served = [s.last.positions for s in sources if s.last is not None]
    got = run(model, ids, mask)
    rerouted = _patch._describe(model)["rerouted"]
    vision_untouched = all("forward" not in vars(m) for m in towers.values())
    rotary.unpatch(model)

    # The patched text RoPE was handed the 3-axis ids, and they matter: distinct axes change the
    # logits against the same ids on all three axes, so the equality below checks the sections.
    assert served and all(p.shape == (3, 2, 7) for p in served)
    assert max_diff(want[1], want[2]) > 10 * TOLERANCE
    for name, ours, theirs in zip(("text-only", "3-axis", "equal-axis"), got[:3], want[:3], strict=True):
        assert max_diff(ours, theirs) <= TOLERANCE, name
    assert torch.equal(got[3], want[3])
    # The rotation went through rotary.torch.apply_rotary, in the text model only; the vision
    # towers' RoPE modules and attention keep transformers' code.
    assert rerouted and all(path.startswith("model.language_model.") for path, _, _ in rerouted)
    assert vision_untouched
    assert_same_objects(before, instance_state(model))
    assert vision_ropes(model) == towers


@pytest.mark.parametrize("model_type", ["qwen2_vl", "qwen3_vl"])
def test_a_config_without_mrope_section_gets_the_modules_default(model_type):
    # Real checkpoints name their sections; without them transformers' module falls back on its
    # family's default ([16, 24, 24] for Qwen2-VL, [24, 20, 20] interleaved for Qwen3-VL), sized
    # for the real 128-wide head, and rotary must split the pairs the same way.
    width = dict(hidden_size=512, head_dim=128)
    model = build(model_type, sections="absent", text=width, vision=dict(hidden_size=512, out_hidden_size=512))
    ids, mask = left_padded_batch()
    want = run(model, ids, mask)
    with rotary.patched(model, keep_vision=True):
        got = run(model, ids, mask)
    assert "mrope_section" not in model.config.text_config.rope_parameters
    assert max_diff(want[1], want[2]) > 10 * TOLERANCE
    for name, ours, theirs in zip(("text-only", "3-axis", "equal-axis"), got[:3], want[:3], strict=True):
        assert max_diff(ours, theirs) <= TOLERANCE, name
    assert torch.equal(got[3], want[3])


def test_the_comparison_fails_on_a_wrong_mrope_section():
    model = build("qwen2_vl")
    ids, mask = left_padded_batch()
    want = run(model, ids, mask)
    with rotary.patched(model, keep_vision=True):
        source = _patch._PATCHES[model].sources[0]
        wrong = toy_text_config(model.config.text_config, "qwen2_vl", sections=[2, 3, 3])
        source.ropes = {None: rotary.Rope(wrong)}
        got = run(model, ids, mask)
    # Sections only split the pairs between axes: with equal axes a wrong split is invisible, with
    # distinct ones it is far past the tolerance.
    assert max_diff(got[0], want[0]) <= TOLERANCE
    assert max_diff(got[1], want[1]) > 100 * TOLERANCE


# ---- a tiny image through Qwen2-VL: position ids from its own get_rope_index -----------------------

IMAGE_TOKENS = dict(image_token_id=120, video_token_id=121, vision_start_token_id=122, vision_end_token_id=123)


def image_prompt():
    """The model inputs for one 4x4-patch image (4 tokens after the 2x2 merge) in text, batch of 2."""
    grid = torch.tensor([[1, 4, 4]])
    patch_values = 3 * 2 * 2 * 2  # channels * temporal_patch_size * patch_size**2
    pixels = torch.randn(16, patch_values, generator=torch.Generator().manual_seed(3))
    start, image, end = 122, 120, 123
    ids = torch.tensor([[5, 17, start] + [image] * 4 + [end, 33, 41, 9]] * 2)
    return dict(
        input_ids=ids,
        mm_token_type_ids=(ids == image).int(),  # what the processor returns beside input_ids
        pixel_values=pixels.repeat(2, 1),
        image_grid_thw=grid.repeat(2, 1),
    )


def test_keep_vision_patches_the_text_model_and_leaves_the_vision_tower():
    model = build("qwen2_vl", **IMAGE_TOKENS)
    inputs = image_prompt()
    positions, _ = model.model.get_rope_index(
        inputs["input_ids"], inputs["mm_token_type_ids"], image_grid_thw=inputs["image_grid_thw"]
    )
    tower = model.model.visual
    tower_before = {name: (dict(vars(m)), m) for name, m in tower.named_modules()}

    with torch.no_grad():
        want = model(**inputs).logits
        want_tokens = model.generate(**inputs, max_new_tokens=4, do_sample=False, pad_token_id=0)
    with pytest.raises(rotary.Error, match="model_type 'qwen2_vl'.*visual.rotary_pos_emb.*keep_vision=True"):
        rotary.patch(model)
    with rotary.patched(model, keep_vision=True):
        source = _patch._PATCHES[model].sources[0]
        with torch.no_grad():
            got = model(**inputs).logits
            served = source.last.positions.clone()
            got_tokens = model.generate(**inputs, max_new_tokens=4, do_sample=False, pad_token_id=0)
        tower_during = {name: (dict(vars(m)), m) for name, m in tower.named_modules()}

    assert max_diff(got, want) <= TOLERANCE
    assert torch.equal(got_tokens, want_tokens)
    # The image's tokens sit at distinct height and width positions, which the patched text RoPE served.
    assert not torch.equal(positions[1], positions[2]) and torch.equal(served, positions)
    # The vision tower, its RoPE module included, is the very same objects with no instance attribute added.
    for name, (attributes, module) in tower_before.items():
        during_attributes, during_module = tower_during[name]
        assert during_module is module and during_attributes.keys() == attributes.keys(), name
        assert all(during_attributes[k] is v for k, v in attributes.items()), name
    assert type(tower.rotary_pos_emb).__name__ == "Qwen2VLVisionRotaryEmbedding"


@pytest.mark.parametrize("rows", [2, 4])
def test_position_ids_with_another_number_of_axes_are_refused(rows):
    # The patched module is only checked on the 3 axes its config names; a table for 2 or 4 rows
    # (text positions stacked on the 3 axes, as some text models take them) would be rotary's guess.
    model = build("qwen2_vl")
    rope_module = model.model.language_model.rotary_emb
    positions = torch.arange(5).expand(rows, 1, 5)
    x = torch.zeros(1, 5, 64)
    with (
        rotary.patched(model, keep_vision=True),
        pytest.raises(rotary.Error, match=r"position_ids: .*\(3, batch, seq\)"),
    ):
        rope_module(x, positions)
