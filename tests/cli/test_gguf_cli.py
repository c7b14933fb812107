"""`rotary inspect model.gguf` and `rotary verify model.gguf --config CONFIG`, driving the built binary.

- inspect: the committed fixtures (tests/data/gguf) show their config's values and llama.cpp's facts
  (architecture, rope mode, the converter's Q/K row order); --json carries the same.
- verify: each fixture matches the config it was written from (exit 0, MATCH); a conversion that
  lost rope_freqs or wrote another base does not (exit 1, naming the cause); every stored config,
  converted as llama.cpp's converter writes it (tests/python/gguf_convert.py), matches its config
  except the listed ones, each with the reason it must not.
- Bad input (a truncated file, a file that is not GGUF, one claiming 10^10 tensors, no --config, a
  table-only option) exits 2 with one line on stderr naming what is wrong.

Expected numbers are the configs' published values or formulas written out here, never an earlier
run of the tool. Broken files are written with llama.cpp's own writer (gguf-py's GGUFWriter).
"""

import json
import os
import struct
import subprocess
import sys

import pytest

from cli_runner import CLI, CONFIGS, ROOT, stored_config
from cli_runner import run as run_checked

FIXTURES = ROOT / "tests" / "data" / "gguf"
# Each fixture and the config.json it was written from (tests/data/gguf/make_fixtures.py).
PAIRS = {
    "llama-3.1-8b.gguf": "llama-3.1-8b",
    "qwen2-yarn.gguf": "qwen2.5-7b-instruct-yarn",
    "phi3-longrope.gguf": "phi-3.5-mini-instruct",
}


def run(*args):
    """The exit status is what these tests check: 0 match, 1 mismatch, 2 bad input."""
    return run_checked(*args, check=False)


@pytest.fixture(scope="module", autouse=True)
def binary_exists():
    if not os.path.exists(CLI):
        pytest.fail(f"the rotary binary is not built at {CLI} (set ROTARY_CLI)")


def assert_bad_input(result, *phrases):
    """Exit 2, one line on stderr starting "rotary: ", naming each phrase, no crash."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rotary: "), result.stderr
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])
    assert result.stdout == ""


# ---- inspect


def test_inspect_llama31_shows_base_pairs_mode_and_the_reordered_rows():
    result = run("inspect", FIXTURES / "llama-3.1-8b.gguf")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "architecture       llama\n" in out
    # llama.cpp's NORM mode: adjacent pairs, which the converter's row permutation makes the
    # checkpoint's half-split pairs.
    assert "llama.cpp mode     norm: adjacent pairs (2i, 2i+1)" in out
    assert "Q/K rows           reordered by convert_hf_to_gguf" in out
    assert "rope_theta         500000\n" in out
    assert "head_dim           128, rotary_dim 128, interleaved" in out
    assert "rope_freqs" in out  # the note saying how the factor tensor is read
    assert "context            131072" in out
    # The per-pair rule names the tensor llama.cpp divides by: 1 for fast pairs, factor 8 for slow.
    assert "rope_freqs 1 " in out and "rope_freqs 8 " in out
    assert len([line for line in out.splitlines() if line.strip().startswith(("0 ", "63 "))]) == 2


def test_inspect_qwen2_yarn_and_phi3_longrope():
    qwen = run("inspect", FIXTURES / "qwen2-yarn.gguf")
    assert qwen.returncode == 0, qwen.stderr
    assert "architecture       qwen2\n" in qwen.stdout
    assert "llama.cpp mode     neox: half-split pairs (i, i+64)" in qwen.stdout
    assert "Q/K rows           as in the original checkpoint" in qwen.stdout
    assert "rope_type          yarn\n" in qwen.stdout
    assert "rope_theta         1e+06\n" in qwen.stdout
    assert "factor             4\n" in qwen.stdout

    phi = run("inspect", FIXTURES / "phi3-longrope.gguf")
    assert phi.returncode == 0, phi.stderr
    assert "architecture       phi3\n" in phi.stdout
    assert "llama.cpp mode     neox: half-split pairs (i, i+48)" in phi.stdout  # 3072 / 32 = 96
    assert "rope_type          longrope\n" in phi.stdout
    assert "head_dim           96, rotary_dim 96, half_split" in phi.stdout


def test_inspect_json_carries_the_gguf_facts_and_llama3_frequencies():
    result = run("inspect", FIXTURES / "llama-3.1-8b.gguf", "--json")
    assert result.returncode == 0, result.stderr
    j = json.loads(result.stdout)
    assert j["gguf"]["architecture"] == "llama"
    assert j["gguf"]["rope_mode"] == "norm"
    assert j["gguf"]["qk_rows_permuted"] is True
    assert any("rope_freqs" in note for note in j["gguf"]["notes"])
    assert j["rope_theta"] == 500000 and j["rotary_dim"] == 128 and j["context"] == 131072
    # Llama 3.1's published rule: the fastest pair keeps 500000^0 = 1; the slowest (wavelength
    # far above 8192 / low_freq_factor 1) is divided by factor 8.
    theta = [p["theta"] for p in j["pairs"]]
    assert len(theta) == 64
    assert theta[0] == pytest.approx(1.0, rel=1e-6)
    assert theta[63] == pytest.approx(500000 ** (-126 / 128) / 8, rel=1e-6)


def test_inspect_context_picks_phi3_short_or_long_factors():
    """llama.cpp uses the short factors up to the original context (4096), the long ones past it."""
    config = stored_config("phi-3.5-mini-instruct")
    scaling = config["rope_scaling"]
    for context, factors in ((4096, scaling["short_factor"]), (131072, scaling["long_factor"])):
        result = run("inspect", FIXTURES / "phi3-longrope.gguf", "--context", context, "--json")
        assert result.returncode == 0, result.stderr
        j = json.loads(result.stdout)
        assert j["context"] == context
        expected = [10000 ** (-2 * i / 96) / f for i, f in enumerate(factors)]
        assert [p["theta"] for p in j["pairs"]] == pytest.approx(expected, rel=1e-6)
        tensor = "rope_factors_short" if context == 4096 else "rope_factors_long"
        assert all(p["rule"].startswith(tensor + " ") for p in j["pairs"])


def test_inspect_refuses_config_only_options_and_a_negative_context():
    path = FIXTURES / "llama-3.1-8b.gguf"
    assert_bad_input(run("inspect", path, "--vision"), "--vision", "GGUF")
    assert_bad_input(run("inspect", path, "--layer-type", "full_attention"), "--layer-type")
    assert_bad_input(run("inspect", path, "--context", "-1"), "--context", "positive")


# ---- verify


@pytest.mark.parametrize("fixture", sorted(PAIRS))
def test_each_fixture_matches_its_config(fixture):
    result = run("verify", FIXTURES / fixture, "--config", CONFIGS / f"{PAIRS[fixture]}.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "\nMATCH\n" in result.stdout
    assert f"rotary verify: {FIXTURES / fixture} (GGUF, architecture " in result.stdout
    json_result = run("verify", FIXTURES / fixture, "--config", PAIRS[fixture], "--json")
    assert json_result.returncode == 0, json_result.stderr
    j = json.loads(json_result.stdout)
    assert j["matches"] is True and j["counts"]["mismatch"] == 0
    assert {f["severity"] for f in j["findings"]} <= {"warning", "note"}


def write_llama31(path, base=None, rope_freqs=True):
    """Llama 3.1 8B as llama.cpp's converter writes it, optionally broken."""
    gguf = pytest.importorskip("gguf")
    if str(FIXTURES) not in sys.path:
        sys.path.insert(0, str(FIXTURES))
    import make_fixtures  # the fixtures' own llama3 factor rule (it imports gguf)

    config = stored_config("llama-3.1-8b")
    scaling = config["rope_scaling"]
    head_dim = config["hidden_size"] // config["num_attention_heads"]
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_block_count(32)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_key_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(base if base is not None else config["rope_theta"])
    if rope_freqs:
        factors = make_fixtures.llama3_factors(
            head_dim,
            config["rope_theta"],
            scaling["factor"],
            scaling["low_freq_factor"],
            scaling["high_freq_factor"],
            scaling["original_max_position_embeddings"],
        )
        writer.add_tensor("rope_freqs.weight", factors)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def verify_llama(path, *extra):
    return run("verify", path, "--config", CONFIGS / "llama-3.1-8b.json", *extra)


def test_the_writer_here_gives_a_matching_file(tmp_path):
    """The broken files below differ from this one in one thing only."""
    result = verify_llama(write_llama31(tmp_path / "good.gguf"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_conversion_that_lost_rope_freqs_is_a_mismatch_naming_it(tmp_path):
    result = verify_llama(write_llama31(tmp_path / "no-freqs.gguf", rope_freqs=False))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "\nMISMATCH (" in result.stdout
    mismatches = result.stdout.split("\n  mismatches\n")[1].split("\n  warnings\n")[0]
    assert "rope_freqs" in mismatches or "llama3" in mismatches, result.stdout
    j = json.loads(verify_llama(tmp_path / "no-freqs.gguf", "--json").stdout)
    assert j["matches"] is False
    assert any(
        f["severity"] == "mismatch" and ("rope_freqs" in f["message"] or "llama3" in f["message"])
        for f in j["findings"]
    )


def test_a_wrong_base_is_a_mismatch(tmp_path):
    result = verify_llama(write_llama31(tmp_path / "base.gguf", base=10000.0))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "\nMISMATCH (" in result.stdout
    assert "x rope_theta: " in result.stdout or "x theta: " in result.stdout, result.stdout
    assert "10000" in result.stdout and "500000" in result.stdout


def test_a_truncated_file_exits_2(tmp_path):
    data = (FIXTURES / "llama-3.1-8b.gguf").read_bytes()
    for size in (3, 20, len(data) // 3, len(data) - 1):
        path = tmp_path / f"truncated-{size}.gguf"
        path.write_bytes(data[:size])
        for result in (verify_llama(path), run("inspect", path)):
            assert_bad_input(result, f"{path}: byte ")
            # The reader's ways of saying it: a field cut short, a length or the data past the end.
            cut = ("the file ends after", "left in the file", "past the end of the file")
            assert any(phrase in result.stderr for phrase in cut), result.stderr


def test_a_file_that_is_not_gguf_exits_2(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_text('{"this": "is json"}')
    assert_bad_input(verify_llama(path), str(path), "not a GGUF file")
    assert_bad_input(run("inspect", path), str(path), "not a GGUF file")
    missing = tmp_path / "missing.gguf"
    assert_bad_input(run("inspect", missing), str(missing), "cannot open")


def test_a_file_claiming_ten_billion_tensors_is_refused_at_once(tmp_path):
    """Header: magic, version 3, tensor count 10^10, key/value count 0 (little-endian)."""
    path = tmp_path / "huge.bin"  # recognised by its magic, whatever its name
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 10**10, 0))
    assert_bad_input(verify_llama(path), str(path), "tensor count: 10000000000")
    assert_bad_input(run("inspect", path), str(path), "tensor count: 10000000000")


def test_verify_gguf_bad_usage_exits_2(tmp_path):
    fixture = FIXTURES / "llama-3.1-8b.gguf"
    result = run("verify", fixture)
    assert result.returncode == 2 and "--config" in result.stderr
    assert_bad_input(verify_llama(fixture, "--names", "cos,sin"), "--names")
    assert_bad_input(verify_llama(fixture, "--precision", "f16"), "--precision")
    assert_bad_input(run("verify", fixture, "--config", tmp_path / "nope.json"), "nope.json")
    bad_config = tmp_path / "bad.json"
    bad_config.write_text("{")
    assert_bad_input(run("verify", fixture, "--config", bad_config), str(bad_config))


def test_context_is_refused_for_a_table(tmp_path):
    table = tmp_path / "t.npy"
    assert run("export", "llama-3.1-8b", "--positions", 8, "--format", "npy", "--out", table).returncode == 0
    assert_bad_input(run("verify", table, "--config", "llama-3.1-8b", "--context", 8), "--context")


# ---- every stored config, converted as llama.cpp's converter writes it (tests/python/gguf_convert.py)

# What `rotary verify` must say where it is not a match, and why that is right.
NOT_A_MATCH = {
    # Local layers rotate with base 10000, global ones with 1e6 and linear 8: refused by name.
    "gemma-3-12b-it": (2, "rope.freq_base_swa"),
    # llama.cpp gives the last pairs of sections [24, 20, 20] to a fourth position component.
    "qwen3-vl-4b-instruct": (2, "rope.dimension_sections"),
    # Sliding-window layers without YaRN (the olmo2 loader), full-attention layers with it.
    "olmo-3.1-32b-instruct": (2, "attention.sliding_window"),
    # The config itself is refused (Qwen-1's remote-code dynamic NTK).
    "qwen-1.8b-dynamic-ntk": (2, "use_dynamic_ntk"),
    # No GGUF key carries YaRN's truncate: false; ggml rounds the ramp ends.
    "gpt-oss-20b": (1, "truncate: false"),
}
# Configs with a RoPE per layer type: the layers compared.
LAYER_TYPE = {"gemma-3-12b-it": "full_attention", "olmo-3.1-32b-instruct": "full_attention"}


def converted_configs():
    pytest.importorskip("gguf")
    if str(ROOT / "tests" / "python") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests" / "python"))
    import gguf_convert

    for path in sorted(CONFIGS.glob("*.json")):
        if gguf_convert.refusal_reason(json.loads(path.read_text())) is None:
            yield path.stem, gguf_convert


def test_every_converted_config_verifies_against_its_config(tmp_path):
    seen = []
    for name, gguf_convert in converted_configs():
        path = tmp_path / f"{name}.gguf"
        gguf_convert.write_gguf(json.loads((CONFIGS / f"{name}.json").read_text()), path)
        layer = ["--layer-type", LAYER_TYPE[name]] if name in LAYER_TYPE else []
        result = run("verify", path, "--config", CONFIGS / f"{name}.json", *layer)
        status, phrase = NOT_A_MATCH.get(name, (0, "\nMATCH\n"))
        assert result.returncode == status, (name, result.stdout, result.stderr)
        assert phrase in result.stdout + result.stderr, (name, result.stdout, result.stderr)
        seen.append(name)
    assert len(seen) >= 20 and set(NOT_A_MATCH) <= set(seen)


# ---- the README's report


def test_the_readme_shows_what_verify_prints_for_a_conversion_that_lost_rope_freqs(tmp_path):
    # The README's example: Llama 3.1 8B converted from its config without the rope_scaling block.
    pytest.importorskip("gguf")
    if str(ROOT / "tests" / "python") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests" / "python"))
    import gguf_convert

    command = "$ rotary verify Llama-3.1-8B-lost-rope-freqs.gguf --config llama-3.1-8b\n"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = readme[readme.index(command) + len(command) :].split("```", 1)[0]
    config = stored_config("llama-3.1-8b")
    del config["rope_scaling"]
    gguf_convert.write_gguf(config, tmp_path / "Llama-3.1-8B-lost-rope-freqs.gguf")
    result = subprocess.run(
        [CLI, "verify", "Llama-3.1-8B-lost-rope-freqs.gguf", "--config", "llama-3.1-8b"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout == shown
