"""End-to-end tests of the `rotary` command-line tool, driving the built binary.

Structure is checked literally; numbers are checked against the library (through the Python
package) and, for theta, against transformers itself, never against numbers this tool printed
before. The binary is $ROTARY_CLI, or build/tools/rotary under the repository root.
"""

import json
import math
import os
import re

import numpy as np
import pytest

from cli_runner import CLI, STORED, run, stored_config

rotary = pytest.importorskip("rotary")


def layer_types(name):
    return rotary.rope_layer_types(stored_config(name)) or [None]


def library_rope(name, layer_type=None, **kwargs):
    return rotary.Rope(rotary.config_from_dict(stored_config(name), layer_type=layer_type), **kwargs)


@pytest.fixture(scope="module", autouse=True)
def binary_exists():
    if not os.path.exists(CLI):
        pytest.fail(f"the rotary binary is not built at {CLI} (set ROTARY_CLI)")


def test_help_for_every_command():
    for command in ([], ["demo"], ["list"], ["inspect"], ["plot"], ["decay"], ["export"], ["verify"], ["bench"]):
        result = run(*command, "--help")
        assert "Usage" in result.stdout or "usage" in result.stdout.lower()


def refused(name):
    return stored_config(name).get("use_dynamic_ntk", False)


@pytest.mark.parametrize("name", STORED)
def test_inspect_json_matches_the_library(name):
    if refused(name):
        # Qwen-1's remote-code dynamic NTK: refused by name, never misread as plain RoPE.
        result = run("inspect", name, "--json", check=False)
        assert result.returncode == 2 and "use_dynamic_ntk" in result.stderr
        return
    for layer in layer_types(name):
        args = ["inspect", name, "--json"] + (["--layer-type", layer] if layer else [])
        report = json.loads(run(*args).stdout)
        rope = library_rope(name, layer)
        assert report["rope_type"] == rope.config.rope_type
        assert report["rotary_dim"] == rope.rotary_dim
        assert len(report["pairs"]) == rope.rotary_dim // 2
        theta = np.array([p["theta"] for p in report["pairs"]], dtype=np.float32)
        expected = rope.frequencies_for(np.array([report["context"] - 1]))[0]
        np.testing.assert_array_equal(theta, expected, err_msg=f"{name} theta")
        assert report["attention_factor"] == pytest.approx(rope.attention_factor, rel=1e-12)
        for p in report["pairs"]:
            assert p["regime"] in {"extrapolated", "interpolated", "blended", "rescaled", "not rotated"}
            if p["wavelength"] is not None:
                assert p["wavelength"] == pytest.approx(2 * math.pi / p["theta"], rel=1e-12)


def test_inspect_llama31_against_transformers_and_published_bands():
    transformers = pytest.importorskip("transformers")
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    report = json.loads(run("inspect", "llama-3.1-8b", "--json").stdout)
    hf = LlamaRotaryEmbedding(transformers.LlamaConfig(**stored_config("llama-3.1-8b")))
    theta = np.array([p["theta"] for p in report["pairs"]], dtype=np.float32)
    hf_theta = hf.inv_freq.numpy()
    # Within one float32 ulp of transformers' own tensor (PyTorch's vectorised pow is not
    # correctly rounded; see README "Configuration").
    ulps = np.abs(theta.view(np.int32).astype(np.int64) - hf_theta.view(np.int32).astype(np.int64))
    assert ulps.max() <= 1, f"worst pair {ulps.argmax()}: {theta[ulps.argmax()]} vs {hf_theta[ulps.argmax()]}"
    regimes = [p["regime"] for p in report["pairs"]]
    # Llama 3.1: pairs 0-28 kept, 29-34 smoothed, 35-63 divided by the factor.
    assert regimes == ["extrapolated"] * 29 + ["blended"] * 6 + ["interpolated"] * 29


def test_inspect_text_shows_the_yarn_ramp():
    text = run("inspect", "deepseek-v3").stdout
    assert "YaRN ramp          pairs 10 .. 23" in text
    assert "interleaved" in text


@pytest.mark.parametrize(
    "fmt,dtype",
    [("npy", "f32"), ("npy", "f16"), ("safetensors", "f32"), ("safetensors", "bf16"), ("safetensors", "f16")],
)
@pytest.mark.parametrize("name", ["llama-3.1-8b", "phi-3.5-mini-instruct", "gpt-neox-20b", "internlm2.5-7b-dynamic"])
def test_export_loads_and_equals_the_library_tables(tmp_path, name, fmt, dtype):
    torch = pytest.importorskip("torch")
    n = 70000  # more than one write chunk, and past Phi-3.5's original context (long factors)
    out = tmp_path / f"table.{fmt}"
    run("export", name, "--positions", str(n), "--format", fmt, "--dtype", dtype, "--out", str(out))
    rope = library_rope(name)
    positions = np.arange(n)
    inv_freq, attention = rope.frequencies_for(positions)
    fixed = rotary.Rope(rope.config, inv_freq=inv_freq, attention_factor=attention)
    cos, sin = fixed.cos_sin(positions)
    torch_dtype = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[dtype]
    expected_cos = torch.from_numpy(cos).to(torch_dtype)
    expected_sin = torch.from_numpy(sin).to(torch_dtype)
    if fmt == "npy":
        table = torch.from_numpy(np.load(out))
        assert tuple(table.shape) == (2, n, rope.rotary_dim // 2)
        got_cos, got_sin = table[0], table[1]
    else:
        from safetensors.torch import load_file

        tensors = load_file(str(out))
        got_cos, got_sin = tensors["cos"], tensors["sin"]
        np.testing.assert_array_equal(tensors["inv_freq"].numpy(), inv_freq)
    assert got_cos.dtype == torch_dtype
    assert torch.equal(got_cos, expected_cos), f"{name} cos differs"
    assert torch.equal(got_sin, expected_sin), f"{name} sin differs"


def test_export_safetensors_header_follows_the_spec(tmp_path):
    out = tmp_path / "t.safetensors"
    run("export", "deepseek-v3", "--positions", "10", "--out", str(out))
    raw = out.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + length])
    assert all(isinstance(v, str) for v in header["__metadata__"].values())
    end = 0
    for name in ("inv_freq", "cos", "sin"):  # contiguous, in order, covering the whole buffer
        begin, stop = header[name]["data_offsets"]
        assert begin == end
        end = stop
    assert 8 + length + end == len(raw)


def test_plot_says_figures_come_from_the_python_package_and_writes_nothing(tmp_path):
    # The figures are drawn by rotary.plot (tests/python/test_plot.py); the tool only says where.
    out = tmp_path / "yarn.svg"
    result = run("plot", "qwen2.5-7b-instruct-yarn", "--out", str(out), check=False)
    assert result.returncode == 2
    assert "Python package" in result.stderr
    assert "pip install 'rotary[plot]'" in result.stderr
    assert "python -m rotary plot CONFIG" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_errors_are_one_line_exit_2_and_leave_no_file(tmp_path):
    cases = {
        "missing": (["inspect", str(tmp_path / "absent.json")], "absent.json"),
        "malformed": (["inspect", "BAD"], "malformed JSON"),
        "unknown type": (["inspect", "UNKNOWN"], "rope_scaling.type: unknown value 'warp'"),
        "wrong field type": (["inspect", "WRONGTYPE"], "rope_scaling.factor: expected a number"),
    }
    (tmp_path / "bad.json").write_text('{"head_dim": 64, ')
    (tmp_path / "unknown.json").write_text('{"head_dim": 64, "rope_scaling": {"type": "warp"}}')
    (tmp_path / "wrongtype.json").write_text('{"head_dim": 64, "rope_scaling": {"type": "linear", "factor": "8"}}')
    files = {"BAD": "bad.json", "UNKNOWN": "unknown.json", "WRONGTYPE": "wrongtype.json"}
    for label, (args, fragment) in cases.items():
        args = [str(tmp_path / files[a]) if a in files else a for a in args]
        result = run(*args, check=False)
        assert result.returncode == 2, label
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0], (label, result.stderr)
        if label != "missing":
            assert str(tmp_path) in lines[0], f"{label}: the message names the file"
    # A refused export leaves nothing behind, not even a temporary file.
    before = set(tmp_path.iterdir())
    result = run(
        "export",
        "llama-3.1-8b",
        "--positions",
        "10",
        "--format",
        "npy",
        "--dtype",
        "bf16",
        "--out",
        str(tmp_path / "x.npy"),
        check=False,
    )
    assert result.returncode == 2 and "--dtype" in result.stderr
    result = run(
        "export", "llama-3.1-8b", "--positions", "10", "--out", str(tmp_path / "no" / "dir" / "x.st"), check=False
    )
    assert result.returncode != 0
    assert set(tmp_path.iterdir()) == before


def one_line_error(result):
    """The single line a refused command prints (exit status 2)."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_deep_or_oversized_configs_exit_2_naming_the_file(tmp_path):
    """A million levels of nesting once crashed the tool (stack overflow); now the reader stops at its
    depth limit, and a file over its size limit is refused from its size."""
    deep_arrays = tmp_path / "deep-arrays.json"
    deep_arrays.write_text("[" * 1_000_000 + "]" * 1_000_000)
    deep_objects = tmp_path / "deep-objects.json"
    deep_objects.write_text('{"a":' * 300_000 + "1" + "}" * 300_000)
    out = tmp_path / "x.safetensors"
    for path in (deep_arrays, deep_objects):
        for args in (
            ["inspect", path],
            ["inspect", path, "--vision"],
            ["export", path, "--positions", "8", "--out", out],
        ):
            line = one_line_error(run(*args, check=False))
            assert str(path) in line and "depth" in line, line
    assert not out.exists()
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as f:
        f.truncate(8 << 30)  # sparse: reading it whole would take 8 GiB
    line = one_line_error(run("inspect", huge, check=False))
    assert line == f"rotary: {huge}: file of {8 << 30} bytes exceeds the size limit of 16 MiB"


def test_verify_refuses_hostile_safetensors_headers(tmp_path):
    def table(name, header, length=None):
        path = tmp_path / name
        path.write_bytes((len(header) if length is None else length).to_bytes(8, "little") + header)
        return path

    cases = {
        table("deep-arrays.safetensors", b"[" * 1_000_000 + b"]" * 1_000_000): "depth",
        table("deep-objects.safetensors", b'{"a":' * 300_000 + b"1" + b"}" * 300_000): "depth",
        # The format caps the header at 100 MB; this one claims 2^62 bytes.
        table("huge-header.safetensors", b"{}", length=1 << 62): "limit of 100000000 bytes",
    }
    for path, fragment in cases.items():
        line = one_line_error(run("verify", path, "--config", "llama-3.1-8b", check=False))
        assert str(path) in line and fragment in line, line


def test_demo_is_the_main_job():
    text = run("demo").stdout
    for fragment in ("meta-llama/Llama-3.1-8B", "rope_type          llama3", "Relative position", "Angle precision"):
        assert fragment in text


BENCH_DTYPE_SIZES = {"float32": 4, "bfloat16": 2, "float16": 2}
BENCH_HEADER = re.compile(
    r"rotary bench: (\d+) tokens x \((\d+) Q \+ (\d+) KV heads\) x (\d+), in place, 1 thread\(s\), "
    r"SIMD target (\w+), median of (\d+)"
)


def test_bench_reports_every_dtype_with_consistent_numbers():
    """`rotary bench`'s structure and what holds on any machine, with no timing threshold: the header
    states the shape asked for, one row per storage type, MB moved is Q and K of that shape read once
    and written once, every rate is positive, and each percentage is the ratio of the printed rates
    (to their rounding) and plausible (> 0 and < 1000 %)."""
    tokens, repeats = 256, 5
    lines = run("bench", "--tokens", tokens, "--repeats", repeats).stdout.splitlines()
    header = BENCH_HEADER.fullmatch(lines[0])
    assert header, lines[0]
    n, q_heads, kv_heads, head_dim = (int(g) for g in header.groups()[:4])
    assert (n, int(header[6])) == (tokens, repeats) and min(q_heads, kv_heads, head_dim) > 0, lines[0]
    columns = "dtype | MB moved | rotary GB/s | scale-loop GB/s | memcpy GB/s | % of scale loop | % of memcpy"
    assert lines[1].split() == columns.replace("|", "").split()
    rows = [line.split() for line in lines[2:]]
    assert [row[0] for row in rows] == list(BENCH_DTYPE_SIZES), lines
    for name, *fields in rows:
        assert len(fields) == 6, (name, fields)
        _, rotary_gbs, scale_gbs, copy_gbs, of_scale, of_copy = map(float, fields)
        moved = 2 * n * (q_heads + kv_heads) * head_dim * BENCH_DTYPE_SIZES[name]
        assert fields[0] == f"{moved / 1e6:.1f}", (name, fields[0], moved)
        assert min(rotary_gbs, scale_gbs, copy_gbs) > 0, (name, fields)
        for percent, limit in ((of_scale, scale_gbs), (of_copy, copy_gbs)):
            assert 0 < percent < 1000, (name, fields)
            # Rates are printed to 0.1 GB/s and percentages to 1 %: the ratio within that rounding.
            low = 100 * (rotary_gbs - 0.05) / (limit + 0.05) - 0.5
            high = 100 * (rotary_gbs + 0.05) / (limit - 0.05) + 0.5
            assert low <= percent <= high, (name, fields)


def test_inspect_shows_the_position_axes_of_multimodal_configs():
    """M-RoPE sections (chunked and interleaved) and the vision tower's 2D RoPE, checked against the
    library's own pair-to-axis map, which test_multimodal.py checks against transformers."""
    for name, layer_type in (("qwen2.5-vl-7b-instruct", None), ("qwen3.5-9b", "full_attention")):
        args = ["inspect", name, "--json"] + (["--layer-type", layer_type] if layer_type else [])
        report = json.loads(run(*args).stdout)
        config = rotary.config_from_dict(stored_config(name), layer_type)
        assert report["num_axes"] == 3
        assert report["mrope_section"] == list(config.mrope_section)
        assert report["mrope_order"] == config.mrope_order
        assert [p["axis"] for p in report["pairs"]] == list(config.pair_axes)
        text = run("inspect", name, *(["--layer-type", layer_type] if layer_type else [])).stdout
        assert "position axes      3: pairs per axis temporal" in text
        assert ("interleaved" if config.mrope_interleaved else "consecutive sections") in text

    vision = json.loads(run("inspect", "qwen2.5-vl-7b-instruct", "--vision", "--json").stdout)
    assert (vision["rope_type"], vision["head_dim"], vision["num_axes"]) == ("axial", 80, 2)
    assert vision["mrope_section"] == [20, 20]
    assert vision["axial_frequencies"] == "shared" and vision["axial_columns_first"] is False
    rope = rotary.Rope(stored_config("qwen2.5-vl-7b-instruct"), vision=True)
    assert [p["theta"] for p in vision["pairs"]] == [float(t) for t in rope.inv_freq]
    failed = run("inspect", "llama-3-8b", "--vision", check=False)
    assert failed.returncode == 2 and "vision_config" in failed.stderr


def test_inspect_explains_phimoe_mscales(tmp_path):
    """PhiMoE's LongRoPE: the attention factor is long_mscale past the original context, else
    short_mscale, and every pair keeps its short_factor (PhimoeRotaryEmbedding.forward, checked
    against that class by the family sweep)."""
    config = {
        "model_type": "phimoe",
        "head_dim": 8,
        "max_position_embeddings": 131072,
        "rope_scaling": {
            "type": "longrope",
            "short_factor": [1, 1, 1, 1],
            "long_factor": [2, 3, 4, 5],
            "short_mscale": 1.25,
            "long_mscale": 1.5,
            "original_max_position_embeddings": 4096,
        },
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    for context, scale, name in ((4096, 1.25, "short_mscale"), (8192, 1.5, "long_mscale")):
        report = json.loads(run("inspect", str(path), "--context", str(context), "--json").stdout)
        assert report["attention_factor"] == scale
        assert (report["short_mscale"], report["long_mscale"]) == (1.25, 1.5)
        assert {pair["rule"] for pair in report["pairs"]} == {"short_factor 1"}
        assert f"{scale:.7f} ({name}, PhiMoE" in run("inspect", str(path), "--context", str(context)).stdout


def test_layers_lists_which_layers_rotate():
    """Llama-4-Scout's config states no NoPE layers: every 4th of its 48 is NoPE (Llama4TextConfig's
    default interval; tests/python/test_layers.py checks the rule against Llama4TextAttention)."""
    layers = json.loads(run("layers", "llama-4-scout-17b-16e-instruct", "--json").stdout)
    assert [layer["layer"] for layer in layers if not layer["rotates"]] == list(range(3, 48, 4))
    assert {layer["rope_type"] for layer in layers if layer["rotates"]} == {"llama3"}
    assert run("layers", "llama-4-scout-17b-16e-instruct").stdout.rstrip().endswith("36 of 48 layers rotate")
    failed = run("layers", "llama-3-8b", check=False)  # the stored record keeps no layer count
    assert failed.returncode == 2 and "num_hidden_layers" in failed.stderr


def test_inspect_summarises_vllms_ntk_scaling(tmp_path):
    config = {"head_dim": 128, "rope_theta": 10000.0, "rope_scaling": {"rope_type": "ntk", "factor": 4.0}}
    path = tmp_path / "ntk.json"
    path.write_text(json.dumps(config))
    assert "NTK scaling        base 10000 x factor 4 = 40000" in run("inspect", path).stdout
    report = json.loads(run("inspect", path, "--json").stdout)
    assert report["rope_type"] == "ntk"
    # theta_i = base^(-2i/d) factor^(-(2i+2)/d): the slowest pair divided by the whole factor.
    last = report["pairs"][-1]
    assert last["scale"] == pytest.approx(1 / 4, rel=1e-6) and last["regime"] == "interpolated"
