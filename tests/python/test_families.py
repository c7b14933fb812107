"""Every RoPE family of the installed transformers (5.24), found in its source, against rotary.

families.py enumerates the modeling files that rotate by position and checks each rotary module
class (a text model, a vision or audio tower) on transformers' own default config, the scaled RoPE
types the module accepts, its layer types and the real configs stored for it, against transformers'
own module and apply function (see families.py for what is compared and the tolerances).

Each family ends in one state: match, refused (rotary raised rotary.Error), mismatch or unchecked.
A mismatch or an unchecked family fails, unless it is listed below: KNOWN_MISMATCHES are rotary
bugs whose fixes are under way, UNCHECKED are modules this sweep cannot drive. Both are strict
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

# --- rotary bugs, each confirmed by the sweep's diagnosis -----------------------------------------

_LLAMA3_BAND = (
    "llama3: theta inside the smoothing band 2-5 ulps from transformers', also with torch's pow correctly "
    "rounded: transformers divides numbers by tensors (2 * pi / theta, original_max_position_embeddings / "
    "wavelength), which torch evaluates as reciprocal(tensor) * number, rotary with one division; with one "
    "division transformers' theta equals rotary's bit for bit")
_INTERLEAVED = ("transformers pairs channels (2j, 2j + 1) (its own rotate_half / repeat_interleave of the "
                "frequencies); rotary reads the family's config as half-split (j, j + d/2)")
_INTERLEAVE_APPLY = ("the attention always calls apply_rotary_pos_emb_interleave, which pairs (2j, 2j + 1); "
                     "rotary makes only deepseek_v2 / deepseek_v3 and rope_interleave: true interleaved")
_DEFAULT_MROPE = ("M-RoPE: the config has no mrope_section, so rotary reads one position axis; transformers' "
                  "module falls back to its own default sections and rotates by 3 components per token")
_QK_ROPE_PARTIAL = ("rotary_dim: rotary multiplies qk_rope_head_dim by partial_rotary_factor; transformers "
                    "multiplies head_dim (head_dim * factor == qk_rope_head_dim), so rotary rotates a fraction of "
                    "the rope part")
_GLOBAL_HEAD_DIM = ("rotary_dim on full_attention layers: transformers uses global_head_dim (512) there "
                    "(proportional RoPE), rotary head_dim (256)")


def _with_llama3(text):
    return f"{text}; and {_LLAMA3_BAND}"


KNOWN_MISMATCHES = {
    **{name: _LLAMA3_BAND for name in (
        "apertus", "apertus1p5", "aria", "bitnet", "chameleon", "csm", "deepseek_ocr2", "deepseek_v2",
        "diffllama", "doge", "dory", "dots1", "esmc", "evolla", "exaone4", "exaone_moe", "falcon", "flex_olmo",
        "glm4_moe_lite", "gpt_oss", "granite", "granite4_vision", "granitemoe", "granitemoe_swa",
        "granitemoehybrid", "granitemoeshared", "higgs_audio_v2", "hrm_text", "hunyuan_v1_dense",
        "hunyuan_v1_moe", "hy_v3", "hyperclovax", "idefics", "kyutai_speech_to_text", "lara_mini", "lasr",
        "llama", "mimi", "minimax_m2", "ministral", "mistral", "molmo2", "moshi", "muse_glimmer", "nomic_bert",
        "olmo", "olmo2", "olmo3", "olmo_hybrid", "olmoe", "phi", "pocket_tts_audio_tokenizer", "qwen2",
        "qwen2_moe", "qwen3", "seed_oss", "smollm3", "starcoder2", "step3p7", "ultrabert", "unlimited_ocr",
        "youtu")},
    **{name: _INTERLEAVED for name in (
        "blt", "cohere2", "cohere2_moe", "ernie4_5", "ernie4_5_moe", "moonshine_streaming")},
    **{name: _with_llama3(_INTERLEAVED) for name in (
        "cohere", "dots3_note.audio", "glm", "glm4", "helium", "openai_privacy_filter", "pe_audio",
        "pe_audio_video", "pe_video")},
    "codegen": _INTERLEAVED + " (GPT-J's rotate_every_two; rotary knows it for gptj only)",
    "llama4": _INTERLEAVED + " (apply_rotary_emb multiplies complex numbers built from (2j, 2j + 1))",
    "roformer": _INTERLEAVED + "; its table is also built in float64 (create_weight), not float32 theta",
    **{name: _INTERLEAVE_APPLY for name in ("axk2", "longcat_flash", "mistral_large4")},
    **{name: _with_llama3(_INTERLEAVE_APPLY) for name in ("deepseek_v32", "glm_moe_dsa")},
    "bailing_hybrid": _with_llama3(_INTERLEAVE_APPLY) + "; longrope: attention factor 1 instead of 1.0607, as "
                      "rotary finds no max_position_embeddings (the config spells it model_max_length)",
    **{name: _DEFAULT_MROPE for name in (
        "ernie4_5_vl_moe", "glm_ocr", "paddleocr_vl", "qwen2_5_omni", "qwen2_5_vl", "qwen2_vl", "qwen3_5",
        "qwen3_5_moe", "qwen3_vl", "qwen3_vl_moe", "qwen4_exp")},
    "cosmos3_edge": _with_llama3("M-RoPE: transformers interleaves the sections (Qwen3-VL's layout, length = "
                                 "section * 3), rotary assigns them in chunks (channels of pairs j % 3 != 0 differ)"),
    **{name: _QK_ROPE_PARTIAL for name in ("deepseek_v4", "dots3_note", "mistral4")},
    **{name: _GLOBAL_HEAD_DIM for name in ("diffusion_gemma", "embedding_gemma2", "gemma4", "gemma4_unified")},
    "jetmoe": "rotary_dim: transformers' head_dim is kv_channels (128), rotary takes hidden_size / "
              "num_attention_heads (64)",
    "minimax_m3_vl": "rotary_dim: rotary honours the config's rotary_dim (64, GPT-J's field), transformers "
                     "rotates the whole head_dim (128)",
    "zamba2": "rotary_dim: transformers' head_dim is attention_head_dim = 2 * hidden_size / num_attention_heads "
              "(160), rotary 80",
    "evolla.saprot": "the protein encoder's RoPE is in protein_encoder_config, which rotary cannot select: it "
                     "reads the language model's head_dim (128 instead of 64)",
    "nanochat": _with_llama3("transformers rotates by minus the angle (its rotate_half returns (x2, -x1)); "
                             "rotary's inverse rotation matches it"),
    "pixtral": "a standalone PixtralVisionConfig (rope_type axial) is read as a shared-frequency 2D RoPE "
               "(Qwen2-VL's), not Pixtral's alternating one: theta of pairs 16..31 differ (Devstral's config, "
               "read with vision=True, matches)",
}

# --- modules the sweep cannot drive -------------------------------------------------------------

_NO_POSITIONS = "its forward takes no position ids (it derives them itself) and no adapter drives it"

UNCHECKED = {
    **{name: _NO_POSITIONS for name in (
        "clvp", "dinov3_vit", "eomt_dinov3", "lightglue", "sapiens2", "wav2vec2_bert", "wav2vec2_conformer")},
    "vjepa2": "no module class computes its cos/sin: the rotation is computed inside the attention module",
    "cohere_compass": "transformers' default config has empty rope_parameters, which its module cannot build "
                      "(KeyError 'full_attention'), and no real config is stored",
    "glm4v": "transformers' default config does not run its module: the default mrope_section [8, 12, 12] covers "
             "32 of the default head_dim's 64 frequencies (real configs set partial_rotary_factor 0.5)",
    "glm_image": "as glm4v: the default mrope_section [8, 12, 12] does not fit the default head_dim",
    "hunyuan_vl": "transformers' default config has no mrope_section, and its module takes len() of it",
    "gemma4.vision": "apply_multidimensional_rope needs the (patches, 2) position ids inside the apply call",
    "sam3": "apply_rotary_pos_emb_2d wants q as (batch, windows, seq, heads, d) against (seq, d) tables",
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
