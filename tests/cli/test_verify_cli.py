"""`rotary verify TABLE --config CONFIG`, driving the built binary.

- Every bundled config: `rotary export` writes a table, `rotary verify` must call it a match.
- Tables written by other producers (transformers' modules, GPT-J's sinusoid table, DeepSeek-V2's
  complex freqs_cis, a vLLM-style cos_sin_cache) must match their configs too.
- Tampered tables (each one real-world bug) must exit 1 with the message that names the bug.
- Bad input exits 2 with one line naming the file.

The tampering is done here with NumPy on the exported files; expected messages are fixed phrases,
and numbers in them come from the configs, never from an earlier run of the tool.
"""

import json
import math
import os
import sys

import numpy as np
import pytest

from cli_runner import CLI, ROOT, STORED, stored_config
from cli_runner import run as run_checked

rotary = pytest.importorskip("rotary")
# transformers as a table producer, offline; hf_reference builds its models from the stored configs.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(ROOT / "tests" / "python"))


def run(*args):
    """The exit status is what these tests check: 0 match, 1 mismatch, 2 bad input."""
    return run_checked(*args, check=False)


def fields(name):
    return stored_config(name)


def cases():
    for name in STORED:
        config = fields(name)
        if config.get("use_dynamic_ntk"):
            continue  # Qwen-1: refused by name everywhere (test_cli covers it)
        for layer in rotary.rope_layer_types(config) or [None]:
            yield name, layer


@pytest.fixture(scope="module", autouse=True)
def binary_exists():
    if not os.path.exists(CLI):
        pytest.fail(f"the rotary binary is not built at {CLI} (set ROTARY_CLI)")


def export(tmp_path, name, positions, fmt="npy", dtype="f32", layer=None, mode="hf"):
    out = tmp_path / f"{name}-{layer}-{dtype}-{mode}.{fmt}"
    args = [
        "export",
        name,
        "--positions",
        positions,
        "--format",
        fmt,
        "--dtype",
        dtype,
        "--angle-mode",
        mode,
        "--out",
        out,
    ] + (["--layer-type", layer] if layer else [])
    result = run(*args)
    assert result.returncode == 0, result.stderr
    return out


def verify(table, config, *extra):
    return run("verify", table, "--config", config, *extra)


def verify_json(table, config, *extra):
    result = verify(table, config, "--json", *extra)
    return result.returncode, json.loads(result.stdout)


# ---- every bundled config ----------------------------------------------------------------------


@pytest.mark.parametrize("name,layer", list(cases()))
def test_exported_table_matches_its_config(tmp_path, name, layer):
    config = fields(name)
    # Past LongRoPE's original context (Phi-3: 4096), so the long factors are exported and checked.
    positions = 5000
    extra = ["--layer-type", layer] if layer else []
    for fmt in ("npy", "safetensors"):
        table = export(tmp_path, name, positions, fmt, layer=layer)
        code, report = verify_json(table, name, *extra)
        assert code == 0 and report["matches"], json.dumps(report["findings"], indent=1)
        assert report["table"]["positions"] == positions
        assert report["config"]["rope_type"] == rotary.Rope(config, layer_type=layer).config.rope_type


def test_long_exact_table_and_the_text_report(tmp_path):
    table = export(tmp_path, "llama-3.1-8b", 131072, "safetensors", mode="exact")
    result = verify(table, "llama-3.1-8b")
    assert result.returncode == 0, result.stdout
    assert "MATCH" in result.stdout and "exact to float32 rounding" in result.stdout
    hf_table = export(tmp_path, "llama-3.1-8b", 131072, "npy")
    result = verify(hf_table, "llama-3.1-8b")
    assert result.returncode == 0 and "grows with the position" in result.stdout


@pytest.mark.parametrize("dtype,flag", [("f16", "float16"), ("bf16", "bfloat16")])
def test_sixteen_bit_tables_are_flagged(tmp_path, dtype, flag):
    table = export(tmp_path, "qwen2.5-7b-instruct-yarn", 3000, "safetensors", dtype)
    code, report = verify_json(table, "qwen2.5-7b-instruct-yarn")
    assert code == 0  # stored in 16 bits on purpose: within that precision
    warnings = [f["message"] for f in report["findings"] if f["severity"] == "warning"]
    assert any(f"stored as {flag}" in m for m in warnings)
    result = verify(table, "qwen2.5-7b-instruct-yarn", "--precision", "f32")
    assert result.returncode == 1 and "angle errors exceed float32 rounding" in result.stdout


# ---- other producers -----------------------------------------------------------------------------


def save_safetensors(path, tensors):
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path))


def test_transformers_module_tables_match(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    module = LlamaRotaryEmbedding(transformers.LlamaConfig(**fields("llama-3.1-8b")))
    cos, sin = module(torch.zeros(1), torch.arange(9000)[None])  # (1, N, 128): cat(f, f)
    path = tmp_path / "hf.safetensors"
    save_safetensors(path, {"cos_cached": cos.numpy(), "sin_cached": sin.numpy()})
    code, report = verify_json(path, "llama-3.1-8b")
    assert code == 0, report["findings"]
    assert report["table"]["column_layout"] == "cat"
    # The same table against Llama 3, which has no llama3 scaling: a mismatch.
    result = verify(path, "llama-3-8b", "--names", "cos_cached,sin_cached")
    assert result.returncode == 1 and "θ" in result.stdout


def test_gptj_sinusoid_table_matches_and_its_pairing_is_seen(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from transformers.models.gptj.modeling_gptj import create_sinusoidal_positions

    rotary_dim = fields("gpt-j-6b")["rotary_dim"]
    sincos = create_sinusoidal_positions(2048, rotary_dim)  # cat(sin, cos), GPT-J's own table
    sin, cos = torch.split(sincos, rotary_dim // 2, dim=-1)
    # GPT-J's apply repeats each column twice: repeat_interleave(., 2).
    path = tmp_path / "gptj.safetensors"
    save_safetensors(path, {"cos": cos.repeat_interleave(2, -1).numpy(), "sin": sin.repeat_interleave(2, -1).numpy()})
    code, report = verify_json(path, "gpt-j-6b")
    assert code == 0, report["findings"]
    assert report["table"]["column_layout"] == "repeat_interleave"
    # Half-split duplication on an interleaved family: the wrong pairing.
    bad = tmp_path / "gptj-cat.safetensors"
    save_safetensors(bad, {"cos": torch.cat([cos, cos], -1).numpy(), "sin": torch.cat([sin, sin], -1).numpy()})
    result = verify(bad, "gpt-j-6b")
    assert result.returncode == 1
    assert (
        "pairs are (i, i+32) (the table repeats each frequency as cat(f, f)) but the config's model family "
        "uses (2i, 2i+1)" in result.stdout
    )


def test_deepseek_v2_complex_freqs_cis_npy(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from hf_reference import hf_rope, load_records

    hf = hf_rope("deepseek-v2-lite.json", dict(load_records())["deepseek-v2-lite.json"], None)
    freqs_cis = hf.call_complex(torch.arange(4096))[0]  # complex64 (N, 32): Meta's form
    path = tmp_path / "freqs_cis.npy"
    np.save(path, freqs_cis.numpy())
    code, report = verify_json(path, "deepseek-v2-lite")
    assert code == 0, report["findings"]
    assert report["table"]["arrangement"].startswith("complex")
    view = tmp_path / "view_as_real.npy"
    np.save(view, torch.view_as_real(freqs_cis).numpy())
    assert verify(view, "deepseek-v2-lite").returncode == 0


def test_vllm_style_cos_sin_cache(tmp_path):
    rope = rotary.Rope(fields("mistral-7b-v0.3"))
    # vLLM computes its cache from the base formula in float32: cat(cos, sin) along the columns.
    theta = 1.0 / (fields("mistral-7b-v0.3")["rope_theta"] ** (np.arange(0, 128, 2, dtype=np.float32) / 128))
    angle = np.arange(6000, dtype=np.float32)[:, None] * theta.astype(np.float32)[None, :]
    cache = np.concatenate([np.cos(angle), np.sin(angle)], axis=-1).astype(np.float32)
    path = tmp_path / "vllm.safetensors"
    save_safetensors(path, {"cos_sin_cache": cache})
    code, report = verify_json(path, "mistral-7b-v0.3")
    assert code == 0, report["findings"]
    assert report["table"]["rotary_dim"] == rope.rotary_dim


# ---- tampered tables ----------------------------------------------------------------------------------


def tampered(tmp_path, source, change):
    table = np.load(source)
    out = tmp_path / "tampered.npy"
    np.save(out, change(table).astype(table.dtype))
    return out


def mismatch(result, phrase):
    assert result.returncode == 1, result.stdout + result.stderr
    assert phrase in result.stdout, result.stdout


def test_wrong_base(tmp_path):
    table = export(tmp_path, "llama-2-7b", 4096)
    mismatch(verify(table, "llama-3-8b"), "θ matches base 10000, config says 500000")


def test_attention_factor_missing(tmp_path):
    table = export(tmp_path, "qwen2.5-7b-instruct-yarn", 4096)
    scaling = fields("qwen2.5-7b-instruct-yarn")["rope_scaling"]
    factor = 0.1 * math.log(scaling["factor"]) + 1  # YaRN's attention factor, from its definition
    out = tampered(tmp_path, table, lambda t: t / np.float32(factor))
    mismatch(verify(out, "qwen2.5-7b-instruct-yarn"), "attention factor missing")
    mismatch(verify(out, "qwen2.5-7b-instruct-yarn"), f"{factor:.7g}")


def test_positions_off_by_one(tmp_path):
    table = export(tmp_path, "llama-3-8b", 4097)
    out = tampered(tmp_path, table, lambda t: t[:, 1:])  # row p holds position p + 1
    mismatch(verify(out, "llama-3-8b"), "positions off by +1")


def test_float16_values_stored_as_float32(tmp_path):
    table = export(tmp_path, "llama-3-8b", 4096)
    out = tampered(tmp_path, table, lambda t: t.astype(np.float16).astype(np.float32))
    mismatch(verify(out, "llama-3-8b"), "cos/sin are float16 values stored as float32")


def test_sin_with_the_wrong_sign(tmp_path):
    table = export(tmp_path, "mistral-7b-v0.3", 1000)
    out = tampered(tmp_path, table, lambda t: t * np.array([1, -1], dtype=t.dtype)[:, None, None])
    mismatch(verify(out, "mistral-7b-v0.3"), "every pair turns backwards")


def test_rotary_dim_too_large(tmp_path):
    neox = fields("gpt-neox-20b")
    head_dim = neox["hidden_size"] // neox["num_attention_heads"]
    config = tmp_path / "full.json"
    config.write_text(json.dumps({"head_dim": head_dim, "rope_theta": neox["rotary_emb_base"]}))
    table = export(tmp_path, str(config), 2048)
    rotary_dim = int(head_dim * neox["rotary_pct"])
    mismatch(
        verify(table, "gpt-neox-20b"),
        f"the table rotates {head_dim} channels ({head_dim // 2} columns, one per pair), the config "
        f"rotates {rotary_dim} of {head_dim}",
    )


def test_wrong_scaling_is_named(tmp_path):
    table = export(tmp_path, "llama-3-8b", 4096)  # plain base 500000
    mismatch(verify(table, "llama-3.1-8b"), "the config's llama3 scaling is not applied")
    gemma = export(tmp_path, "gemma-3-12b-it", 4096, layer="sliding_attention")  # base 10000, no scaling
    mismatch(verify(gemma, "gemma-3-12b-it", "--layer-type", "full_attention"), "θ are plain RoPE with base 10000")


def test_columns_not_duplicated(tmp_path):
    table = np.load(export(tmp_path, "llama-3-8b", 100))
    shuffled = np.concatenate([table, table[:, :, ::-1]], axis=-1)  # width 128, neither duplication
    out = tmp_path / "shuffled.npy"
    np.save(out, shuffled)
    mismatch(verify(out, "llama-3-8b"), "neither cat(f, f)")


# ---- bad input --------------------------------------------------------------------------------------------


def test_bad_input_exits_2_with_one_line(tmp_path):
    good = export(tmp_path, "llama-3-8b", 16, "safetensors")
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<i4'}")
    (tmp_path / "short.safetensors").write_bytes(b"\x01\x02")
    two_d = tmp_path / "two_d.npy"
    np.save(two_d, np.zeros((16, 64), dtype=np.float32))
    one_row = tmp_path / "one_row.npy"
    np.save(one_row, np.ones((2, 1, 64), dtype=np.float32))
    cases = [
        ([tmp_path / "absent.npy", "--config", "llama-3-8b"], "absent.npy"),
        ([tmp_path / "junk.npy", "--config", "llama-3-8b"], "junk.npy"),
        ([tmp_path / "short.safetensors", "--config", "llama-3-8b"], "short.safetensors"),
        ([two_d, "--config", "llama-3-8b"], "expected (2, N, W)"),
        ([one_row, "--config", "llama-3-8b"], "at least 2 positions"),
        ([good, "--config", "llama-3-8b", "--names", "c,s"], "no tensor 'c'"),
        ([good, "--config", "no-such-model"], "no-such-model"),
    ]
    for args, fragment in cases:
        result = run("verify", *args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert len(lines) == 1 and fragment in lines[0], (args, result.stderr)


def test_a_table_that_is_no_regular_file_or_too_large_is_refused_before_reading(tmp_path):
    # /dev/zero never ends: reading it would hang. A sparse 80 GiB file costs no disk.
    result = verify("/dev/zero", "llama-3-8b")
    assert result.returncode == 2
    assert "/dev/zero: expected a regular file" in result.stderr
    huge = tmp_path / "huge.npy"
    with open(huge, "wb") as f:
        f.truncate(80 << 30)
    result = verify(huge, "llama-3-8b")
    assert result.returncode == 2
    assert "the limit is 68719476736 (rotary::kMaxRequestBytes)" in result.stderr
