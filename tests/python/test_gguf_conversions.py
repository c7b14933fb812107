"""Every stored config converted as llama.cpp's converter converts it (gguf_convert.py), read back by
rotary.gguf, against transformers' own rotary embedding for the config.

For each config the converter supports: (a) rotary.gguf.rope_config builds the rotation, or refuses
it naming the key it cannot express (only the refusals listed in EXPECTED_REFUSALS are accepted);
(b) its frequencies and cos/sin scale equal transformers' (hf_reference) within float32 rounding,
except the documented differences in KNOWN_DIFFERENCES, each of which is checked to be exactly that
difference; (c) the pairing llama.cpp uses, taken back through the converter's Q/K row reordering,
is the checkpoint's own pairing as rotary's config loader reports it; (d) rotary.verify_gguf finds a
match (a mismatch for the known differences).
"""

import json
import logging
from pathlib import Path

import numpy as np
import pytest

import rotary
from hf_reference import family_of, hf_rope, load_record

gguf_convert = pytest.importorskip("gguf_convert", reason="the gguf package is needed to write GGUF files")
import rotary.gguf  # noqa: E402 - after the importorskip: rotary.gguf is usable only with gguf installed

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"
ALL_CONFIGS = sorted(path.name for path in CONFIGS.glob("*.json"))

# The config files the converter supports, and those it does not (with the converter's reason).
CONVERTED = [
    name for name in ALL_CONFIGS if gguf_convert.refusal_reason(json.loads((CONFIGS / name).read_text())) is None
]
NOT_CONVERTED = {
    name: gguf_convert.refusal_reason(json.loads((CONFIGS / name).read_text()))
    for name in ALL_CONFIGS
    if name not in CONVERTED
}

# Files rotary.gguf refuses, by the key its message must name, and why that is right.
EXPECTED_REFUSALS = {
    # Gemma 3's local layers rotate with rope_local_base_freq 10000 and no scaling, its global
    # layers with 1e6 and linear 8: two rotations in one file.
    "gemma-3-12b-it.json": "rope.freq_base_swa",
    # Interleaved M-RoPE sections [24, 20, 20] over 64 pairs: llama.cpp gives the last pairs to the
    # fourth position component, transformers to the first.
    "qwen3-vl-4b-instruct.json": "rope.dimension_sections",
    # OLMo 3's sliding-window layers (three in four) rotate without YaRN in llama.cpp (its olmo2
    # loader sets their scale to 1), as in transformers, the others with it: two rotations.
    "olmo-3.1-32b-instruct.json": "attention.sliding_window",
}

# Configs transformers has no implementation of (hf_reference.UNSUPPORTED): (a) only.
NO_REFERENCE = {name for name in CONVERTED if family_of(load_record(name))[1] is not None}

# Configs whose layers rotate differently by layer type: the layer type compared (none now: such
# files are refused above).
LAYER_TYPE = {}

# float32 rounding: both compute base^(-2i/d) (and divide by a factor) in float32; at most 2 ulps
# apart were seen (a float32 ulp is 6e-8 to 1.2e-7 of the value).
RTOL = 4e-7


def convert(name, directory, config=None):
    config = config if config is not None else json.loads((CONFIGS / name).read_text())
    path = Path(directory) / name.replace(".json", ".gguf")
    path.parent.mkdir(parents=True, exist_ok=True)
    logging.disable(logging.WARNING)  # GGUFWriter's "Duplicated key name" when a class rewrites a key
    try:
        gguf_convert.write_gguf(config, path)
    finally:
        logging.disable(logging.NOTSET)
    return path


def transformers_frequencies(name, config=None, position=None):
    """transformers' inverse frequencies and cos/sin scale: at initialisation, or those of a
    forward call that reaches `position` (LongRoPE switches to its long factors past the original
    context)."""
    record = load_record(name)
    if config is not None:
        record = dict(record, config=config)
    hf = hf_rope(name, record, LAYER_TYPE.get(name))
    if position is None:
        inv_freq, factor = hf.initial_frequencies()
    else:
        _, _, inv_freq, factor = hf.call([0, position])
    return inv_freq.double().numpy(), float(factor)


def longrope_original_context(name):
    """Phi-3's original context if `name` is a LongRoPE config, else None."""
    config = json.loads((CONFIGS / name).read_text())
    if "long_factor" in (config.get("rope_scaling") or {}):
        return config["original_max_position_embeddings"]
    return None


def frequency_mismatch(gguf_path, name, config=None, context_length=None, position=None):
    """What differs between the file's rotation (llama.cpp run with `context_length`) and
    transformers' (at `position`, see transformers_frequencies) for config `name`, or None."""
    rope = rotary.Rope(rotary.gguf.rope_config(gguf_path, context_length).config)
    expected, expected_factor = transformers_frequencies(name, config, position)
    got = rope.inv_freq.astype(np.float64)
    if got.shape != expected.shape:
        return f"{got.size} frequencies, transformers has {expected.size}"
    bad = np.flatnonzero(np.abs(got - expected) > RTOL * np.abs(expected))
    if bad.size:
        i = int(bad[0])
        return f"inv_freq[{i}] = {got[i]!r}, transformers {expected[i]!r} ({bad.size} differ)"
    if abs(rope.attention_factor - expected_factor) > RTOL * expected_factor:
        return f"attention factor {rope.attention_factor!r}, transformers {expected_factor!r}"
    return None


def with_truncate(name):
    """The config with YaRN's truncate: true (ggml always rounds the correction range)."""
    config = json.loads((CONFIGS / name).read_text())
    text = config.get("text_config", config)
    key = "rope_parameters" if "rope_parameters" in text else "rope_scaling"
    text[key] = dict(text[key], truncate=True)
    return config


# Differences llama.cpp has from transformers, each checked to be exactly the one described: the
# file must equal transformers for the config changed as given.
KNOWN_DIFFERENCES = {
    # No GGUF key carries YaRN's truncate: false; ggml floors/ceils the correction range.
    "gpt-oss-20b.json": ("truncate: false", with_truncate),
}


def checkpoint_layout(gguf_rope):
    """The pairing llama.cpp applies, in the checkpoint's channel order: norm pairs adjacent rows
    of the file, which are half-split rows of the checkpoint if the converter reordered them."""
    if gguf_rope.rope_mode == "norm" and not gguf_rope.qk_rows_permuted:
        return "interleaved"
    return "half_split"


def test_every_config_is_converted_or_skipped_with_a_reason():
    print("\nnot converted:", json.dumps(NOT_CONVERTED, indent=1))
    assert set(NOT_CONVERTED) == {"gpt-j-6b.json", "phi-3-vision-128k-instruct.json"}
    assert all(NOT_CONVERTED.values())
    assert len(CONVERTED) == 26  # the README says how many


@pytest.mark.parametrize("name", CONVERTED)
def test_conversion_reads_back_as_transformers_rotates(name, tmp_path):
    path = convert(name, tmp_path)
    # (a) built, or refused naming a key
    if name in EXPECTED_REFUSALS:
        with pytest.raises(rotary.Error, match=EXPECTED_REFUSALS[name]):
            rotary.gguf.rope_config(path)
        return
    gguf_rope = rotary.gguf.rope_config(path)
    if name in NO_REFERENCE:
        return  # nothing to compare with (hf_reference.UNSUPPORTED says why)
    # (b) frequencies and cos/sin scale
    if name in KNOWN_DIFFERENCES:
        what, adjusted = KNOWN_DIFFERENCES[name]
        assert frequency_mismatch(path, name) is not None, f"{what} no longer makes a difference"
        assert frequency_mismatch(path, name, adjusted(name)) is None
    elif (original := longrope_original_context(name)) is not None:
        # llama.cpp picks the long factors for a context past the original one, once; transformers
        # for a call that reaches past it. The short ones within it.
        assert frequency_mismatch(path, name, position=original) is None
        assert frequency_mismatch(path, name, context_length=original) is None
        assert frequency_mismatch(path, name) is not None  # long and short differ: both were seen
    else:
        assert frequency_mismatch(path, name) is None
    # (c) pairing in the checkpoint's channel order
    checkpoint = rotary.Rope(str(CONFIGS / name), layer_type=LAYER_TYPE.get(name))
    assert checkpoint_layout(gguf_rope) == checkpoint.layout
    # (d) rotary's own check of a conversion agrees: a match, except the known difference
    report = rotary.verify_gguf(path, checkpoint.config)
    assert report.match == (name not in KNOWN_DIFFERENCES), str(report)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda c: dict(c, rope_theta=c["rope_theta"] * 2), id="wrong-base"),
        pytest.param(lambda c: {k: v for k, v in c.items() if k != "rope_scaling"}, id="no-rope-freqs"),
    ],
)
def test_a_wrong_conversion_is_seen(change, tmp_path):
    # The test of the test: Llama 3.1 converted from a changed config no longer matches transformers
    # for the real one.
    name = "llama-3.1-8b.json"
    path = convert(name, tmp_path, change(json.loads((CONFIGS / name).read_text())))
    assert frequency_mismatch(path, name) is not None
    assert not rotary.verify_gguf(path, str(CONFIGS / name)).match
    right = convert(name, tmp_path / "right")
    assert frequency_mismatch(right, name) is None
    assert rotary.verify_gguf(right, str(CONFIGS / name)).match


def test_the_converter_refuses_what_it_does_not_implement():
    with pytest.raises(gguf_convert.ConversionRefused, match="GPTJForCausalLM"):
        gguf_convert.write_gguf(json.loads((CONFIGS / "gpt-j-6b.json").read_text()), "/nonexistent/x.gguf")
    with pytest.raises(gguf_convert.ConversionRefused, match="not implemented"):
        gguf_convert.write_gguf({"model_type": "bloom"}, "/nonexistent/x.gguf")
