"""rotary.verify_gguf: the rotation llama.cpp applies to a GGUF file against the original config.json.

The committed fixtures (tests/data/gguf, written as convert_hf_to_gguf writes them) match the configs
they were converted from. Broken conversions are the same files rewritten with gguf-py's GGUFWriter
with one key changed or one tensor dropped, as a faulty converter would have written them; each must
give a mismatch of its topic whose message names the key and the numbers.
"""

import json
import logging
from pathlib import Path

import numpy as np
import pytest

import rotary

gguf = pytest.importorskip("gguf")
import gguf_convert  # noqa: E402  (the test converter, needs the gguf package)
import rotary.gguf  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"
GGUF = DATA / "gguf"
CONFIGS = DATA / "configs"


def rewrite(source, path, architecture=None, set_keys=None, drop_keys=(), drop_tensors=()):
    """The fixture `source` written again with GGUFWriter: keys named by their suffix after
    "<arch>." are set or dropped, tensors dropped, the architecture (and its key prefix) changed."""
    metadata = rotary.gguf.read_metadata(GGUF / source)
    old = metadata.architecture
    arch = architecture or old
    keys = {}
    for name, value in metadata.keys.items():
        if name == "general.architecture":
            continue
        suffix = name[len(old) + 1 :] if name.startswith(old + ".") else None
        if suffix in drop_keys:
            continue
        keys[f"{arch}.{suffix}" if suffix is not None else name] = value
    for suffix, value in (set_keys or {}).items():
        keys[f"{arch}.{suffix}"] = value
    writer = gguf.GGUFWriter(str(path), arch)
    for name, value in keys.items():
        if isinstance(value, bool):
            writer.add_bool(name, value)
        elif isinstance(value, int):
            writer.add_uint32(name, value)
        elif isinstance(value, float):
            writer.add_float32(name, value)
        elif isinstance(value, str):
            writer.add_string(name, value)
        else:
            writer.add_array(name, list(value))
    for name, values in metadata.rope_tensors.items():
        if name not in drop_tensors:
            writer.add_tensor(name + ".weight", np.array(values, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def only(report, topic):
    """The mismatch of `topic` (exactly one), with the report in the failure message."""
    found = [f for f in report.findings if f.severity == "mismatch" and f.topic == topic]
    assert len(found) == 1, str(report)
    return found[0].message


@pytest.mark.parametrize(
    "file_name, config",
    [
        ("llama-3.1-8b.gguf", CONFIGS / "llama-3.1-8b.json"),  # a path
        ("qwen2-yarn.gguf", "qwen2.5-7b-instruct-yarn"),  # a built-in name
        ("phi3-longrope.gguf", rotary.config_from_file(CONFIGS / "phi-3.5-mini-instruct.json")),
    ],
)
def test_fixtures_match_their_configs(file_name, config):
    report = rotary.verify_gguf(GGUF / file_name, config)
    assert report.match, str(report)
    assert report.mismatches() == []
    assert len(report.theta_gguf) == len(report.theta_config) > 0
    text = str(report)
    assert "Verdict: MATCH" in text
    assert f"architecture '{report.architecture}'" in text


def test_phi3_compared_at_the_trained_context_uses_the_long_factors():
    report = rotary.verify_gguf(GGUF / "phi3-longrope.gguf", "phi-3.5-mini-instruct")
    assert report.context == 131072
    long_factors = rotary.gguf.read_metadata(GGUF / "phi3-longrope.gguf").rope_tensors["rope_factors_long"]
    # ggml: theta_i = base^(-2i/96) / factor_i.
    expected = 10000.0 ** (-np.arange(48) * 2 / 96) / long_factors.astype(np.float64)
    np.testing.assert_allclose(report.theta_gguf, expected, rtol=1e-6)
    # sqrt(1 + ln(131072 / 4096) / ln(4096)): LongRoPE's scale, on both sides.
    assert report.attention_config == pytest.approx(np.sqrt(1 + np.log(32) / np.log(4096)), rel=1e-6)
    assert report.attention_gguf == pytest.approx(report.attention_config, rel=1e-6)


def test_adjacent_pairs_without_reordering(tmp_path):
    # Orion's bug on the Llama checkpoint: an architecture llama.cpp runs in norm mode without
    # reordering the rows (command-r), for a checkpoint that pairs halves.
    path = rewrite("llama-3.1-8b.gguf", tmp_path / "x.gguf", architecture="command-r")
    report = rotary.verify_gguf(path, "llama-3.1-8b")
    message = only(report, "pairing")
    assert "'command-r'" in message and "(2i, 2i+1)" in message and "i + 64" in message
    assert "NEOX" in message
    assert not report.match


def test_wrong_base(tmp_path):
    path = rewrite("llama-3.1-8b.gguf", tmp_path / "x.gguf", set_keys={"rope.freq_base": 10000.0})
    report = rotary.verify_gguf(path, "llama-3.1-8b")
    message = only(report, "rope_theta")
    assert "llama.rope.freq_base is 10000" in message and "500000" in message
    assert "by position 131072" in only(report, "theta")
    # What llama.cpp rotates with, written out: 10000^(-2i/128) / rope_freqs_i.
    rope_freqs = rotary.gguf.read_metadata(path).rope_tensors["rope_freqs"].astype(np.float64)
    np.testing.assert_allclose(report.theta_gguf, 10000.0 ** (-np.arange(64) / 64) / rope_freqs, rtol=1e-6)


def test_missing_rope_freqs(tmp_path):
    path = rewrite("llama-3.1-8b.gguf", tmp_path / "x.gguf", drop_tensors=("rope_freqs",))
    report = rotary.verify_gguf(path, CONFIGS / "llama-3.1-8b.json")
    message = only(report, "scaling")
    assert "llama3" in message and "factor 8" in message and "rope_freqs is missing" in message
    facts = json.loads(report.to_json())
    assert facts["match"] is False and facts["architecture"] == "llama" and facts["context"] == 131072
    assert [f["topic"] for f in facts["findings"] if f["severity"] == "mismatch"] == ["scaling", "theta"]
    assert len(facts["theta_gguf"]) == len(facts["theta_config"]) == 64
    text = str(report)
    assert "Verdict: MISMATCH (2)" in text
    assert "  x [scaling] the config's llama3" in text
    assert "  x [theta] theta differs" in text


def test_wrong_yarn_factor(tmp_path):
    path = rewrite("qwen2-yarn.gguf", tmp_path / "x.gguf", set_keys={"rope.scaling.factor": 2.0})
    report = rotary.verify_gguf(path, "qwen2.5-7b-instruct-yarn")
    message = only(report, "scaling")
    assert "qwen2.rope.scaling.factor is 2" in message and "factor is 4" in message
    # The cos/sin scale follows the factor in llama.cpp: 0.1 ln 2 + 1 against 0.1 ln 4 + 1.
    assert report.attention_gguf == pytest.approx(0.1 * np.log(2) + 1)
    assert report.attention_config == pytest.approx(0.1 * np.log(4) + 1)
    assert "qwen2.rope.scaling.attn_factor" in only(report, "attention_factor")


def test_dropped_yarn_type(tmp_path):
    path = rewrite("qwen2-yarn.gguf", tmp_path / "x.gguf", drop_keys=("rope.scaling.type",))
    report = rotary.verify_gguf(path, "qwen2.5-7b-instruct-yarn")
    message = only(report, "scaling")
    assert "qwen2.rope.scaling.type = yarn" in message and "factor 4" in message and "32768" in message


def test_wrong_dimension_count(tmp_path):
    path = rewrite(
        "phi3-longrope.gguf",
        tmp_path / "x.gguf",
        set_keys={"rope.dimension_count": 64},
        drop_tensors=("rope_factors_long", "rope_factors_short"),
    )
    report = rotary.verify_gguf(path, "phi-3.5-mini-instruct")
    message = only(report, "rotary_dim")
    assert "phi3.rope.dimension_count" in message and "rotates 64 channels" in message and "64..95" in message


def test_context_length_and_refusals():
    report = rotary.verify_gguf(GGUF / "qwen2-yarn.gguf", "qwen2.5-7b-instruct-yarn", context_length=4096)
    assert report.context == 4096
    with pytest.raises(rotary.Error) as error:
        rotary.verify_gguf(GGUF / "qwen2-yarn.gguf", "qwen2.5-7b-instruct-yarn", context_length=0)
    assert error.value.argument == "context_length"
    with pytest.raises(FileNotFoundError):
        rotary.verify_gguf(GGUF / "qwen2-yarn.gguf", "no-such-model")


def test_deepseek_mscale_llama_cpp_does_not_read(tmp_path):
    # llama.cpp's deepseek2 takes mscale = mscale_all_dim (it stores only the latter); a config with
    # mscale 0.707 scales cos/sin by mscale(40, 0.707) / mscale(40, 1) in transformers.
    config = json.loads((CONFIGS / "deepseek-v3.json").read_text())
    config["rope_scaling"]["mscale"] = 0.707
    path = tmp_path / "model.gguf"
    logging.disable(logging.WARNING)
    try:
        gguf_convert.write_gguf(config, path)
    finally:
        logging.disable(logging.NOTSET)
    report = rotary.verify_gguf(path, config)
    message = only(report, "attention_factor")
    assert "mscale 0.707" in message and "deepseek2.rope.scaling.attn_factor" in message

    def mscale(factor, m):
        return 0.1 * m * np.log(factor) + 1

    assert report.attention_config == pytest.approx(mscale(40, 0.707) / mscale(40, 1.0))
    assert report.attention_gguf == pytest.approx(1.0)
