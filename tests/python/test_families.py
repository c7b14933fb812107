"""Every RoPE family of the installed transformers (5.24), found in its source, against rotary.

families.py enumerates the modeling files that rotate by position and checks each rotary module
class (a text model, a vision or audio tower) on transformers' own default config, the scaled RoPE
types the module accepts, its layer types and the real configs stored for it, against transformers'
own module and apply function (see families.py for what is compared and the tolerances).

Each family ends in one state: match, refused (rotary raised rotary.Error), mismatch or unchecked.
A mismatch or an unchecked family fails, unless it is listed below: KNOWN_MISMATCHES are the
towers and cases rotary still reads differently, each with its diagnosis, UNCHECKED are modules
this sweep cannot drive. Both are strict
xfails, so a family that starts to match fails until its entry is removed.

tests/data/families.json holds the whole result (every family's state, its worst diagnosis, each
case's state); the test regenerates it and fails when it differs (numbers inside messages are not
compared: torch's float32 values may differ by an ulp on another CPU). ROTARY_UPDATE_FAMILIES=1
rewrites it.
"""

import difflib
import json
import os

import pytest

import families

RESULTS_FILE = os.path.join(os.path.dirname(__file__), "..", "data", "families.json")
UPDATE = os.environ.get("ROTARY_UPDATE_FAMILIES") == "1"

# --- what rotary still reads differently, each confirmed by the sweep's diagnosis -----------------

_OTHER_TOWER = ("the family's rotating module is its {tower} encoder, whose RoPE lives in {field}; rotary reads "
                "the config's text part ({text}), which the encoder does not share")

KNOWN_MISMATCHES = {
    "bailing_hybrid": "longrope (the sweep's own scaled case): attention factor 1 instead of 1.0607, as rotary "
                      "finds no max_position_embeddings (this family's config spells it model_max_length)",
    "dots3_note.audio": "its audio encoder pairs (2j, 2j + 1) with half the head rotated; rotary reads the "
                        "language model's config (dots3_note is refused by name, its audio tower is not reachable)",
    "evolla.saprot": "the protein encoder's RoPE is in protein_encoder_config, which rotary cannot select: it "
                     "reads the language model's head_dim (128 instead of 64)",
    **{name: _OTHER_TOWER.format(tower=tower, field=f"{tower}_config", text="ModernBERT, half-split")
       for name, tower in (("pe_audio", "audio"), ("pe_audio_video", "audio_video"), ("pe_video", "video"))},
    "pixtral": "a standalone PixtralVisionConfig (rope_type axial) is read as a shared-frequency 2D RoPE "
               "(Qwen2-VL's), not Pixtral's alternating one: theta of pairs 16..31 differ (Devstral's config, "
               "read with vision=True, matches)",
    "clvp": "CLVP's encoder rotates max(projection_dim // (num_attention_heads * 2), 32) channels of each head "
            "(32 of 64, theta over those 32), a size no config key names; rotary rotates the whole head_dim",
    **{name: "DINOv3's patch-coordinate RoPE: a patch rotates by 2 pi times its centre's (row, column) normalized "
             "to [-1, 1] over the image's patch grid, head_dim / 4 frequencies per axis; rotary reads a 1D RoPE "
             "over integer positions" for name in ("dinov3_vit", "eomt_dinov3", "sapiens2")},
    "lightglue": "LightGlue's angles are a trained nn.Linear(2, head_dim / 2) of normalized keypoint coordinates; "
                 "rotary reads a default RoPE (theta 10000) from a config that has no RoPE keys",
    "vjepa2": "V-JEPA 2 rotates three interleaved chunks of 2 * (head_dim // 3 // 2) channels by (frame, row, "
              "column) derived from each token's index; rotary reads a 1D half-split RoPE",
    "cohere_compass": "Cohere Compass's text model is an M-RoPE of 3 axes in Qwen3-VL's interleaved order (its "
                      "module's default mrope_section [24, 20, 20]); rotary reads it as a 1D RoPE",
    **{name: "its module falls back to its own mrope_section [8, 12, 12] when the config has none; rotary (as "
             "installed) reads such a config as a 1D RoPE" for name in ("glm4v", "glm_image")},
    "gemma4.vision": "Gemma 4's vision tower rotates each half of the head by one position component, (x, y) = "
                     "(column, row), pairs (j, j + head_dim / 4) inside each half; rotary's axial RoPE pairs "
                     "(j, j + head_dim / 2), rows first",
    "sam3": "SAM 3's ViT pairs (2j, 2j + 1) with the column frequencies first, and its global-attention layers "
            "scale positions by window_size / patches per row (1/3); rotary's axial RoPE is half-split by "
            "integer (row, column)",
}

# --- modules the sweep cannot drive -------------------------------------------------------------

UNCHECKED = {
    "hunyuan_vl": "HunYuanVLRotaryEmbedding.forward expands the position ids to len(mrope_section) axes, and neither "
                  "transformers' default config nor the module supplies an mrope_section (the model's own forward "
                  "fails alike); no value of transformers' fills it",
}


class Mismatch(AssertionError):
    """rotary loaded the family's config and rotated differently."""


class NotChecked(AssertionError):
    """The sweep could not drive the family's module."""


def _marks(name):
    if name in KNOWN_MISMATCHES:
        return [pytest.mark.xfail(raises=Mismatch, strict=True, reason=KNOWN_MISMATCHES[name])]
    if name in UNCHECKED:
        return [pytest.mark.xfail(raises=NotChecked, strict=True, reason=UNCHECKED[name])]
    return []


@pytest.mark.parametrize("name", [pytest.param(n, id=n, marks=_marks(n)) for n in families.family_names()])
def test_family(name):
    result = families.check_all()[name]
    if result.state == "mismatch":
        raise Mismatch(f"{name}: {result.detail}")
    if result.state == "unchecked":
        raise NotChecked(f"{name}: {result.detail}")
    assert result.state in ("match", "refused")


def test_the_lists_name_families_that_exist():
    names = set(families.family_names())
    assert not set(KNOWN_MISMATCHES) - names, set(KNOWN_MISMATCHES) - names
    assert not set(UNCHECKED) - names, set(UNCHECKED) - names
    assert not set(KNOWN_MISMATCHES) & set(UNCHECKED)


def test_the_enumeration_comes_from_transformers_source():
    """RoFormer rotates through its sinusoidal table and apply_rotary_position_embeddings, with no
    RotaryEmbedding class; files that only register apply_rotary_pos_emb as a kernel are excluded."""
    found, excluded = families.discover()
    roformer = families.family("roformer")
    assert roformer.cls.__name__ == "RoFormerSinusoidalPositionalEmbedding"
    assert families.choose_apply(roformer, None).__name__ == "apply_rotary_position_embeddings"
    assert {"llama", "qwen2_vl", "qwen2_vl.vision", "gptj", "deepseek_v3"} <= {f.name for f in found}
    assert "jamba" in excluded
    assert len(found) > 200


def test_results_file_is_current():
    document = families.results_document()
    if UPDATE:
        with open(RESULTS_FILE, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=1, ensure_ascii=False)
            f.write("\n")
    with open(RESULTS_FILE, encoding="utf-8") as f:
        stored = json.load(f)
    if stored.get("transformers") != document["transformers"]:
        pytest.skip(f"{RESULTS_FILE} was written with transformers {stored.get('transformers')}, "
                    f"this is {document['transformers']}")
    ours, theirs = families.comparable(document), families.comparable(stored)
    if ours != theirs:
        diff = difflib.unified_diff(json.dumps(theirs, indent=1).splitlines(), json.dumps(ours, indent=1).splitlines(),
                                    "tests/data/families.json", "this run", lineterm="", n=1)
        pytest.fail("tests/data/families.json is stale (ROTARY_UPDATE_FAMILIES=1 rewrites it):\n"
                    + "\n".join(list(diff)[:80]))


def summary_lines(verbose=False):
    """For the terminal summary: the table (verbose runs) and the count line."""
    results = families.check_all.cache_info().currsize and families.check_all()
    if not results:
        return []
    return (families.table_lines(results) if verbose else []) + [families.summary_line(results, KNOWN_MISMATCHES)]
