"""End-to-end tests of `rotary decay`: RoFormer's long-term decay bound as CSV.

The three cases are a base of 1e4 (Llama 2), a base of 5e5 (Llama 3) and a YaRN-scaled config
(Qwen2.5 with its model card's YaRN block). Every printed bound is recomputed here in NumPy from
the definition (Su et al. 2021, section 3.4.3), with theta from the Python package, never from
numbers the tool printed before. The binary is $ROTARY_CLI, or build/tools/rotary under the
repository root.
"""

import csv
import io
import os

import numpy as np
import pytest

from cli_runner import CLI, run, stored_config

rotary = pytest.importorskip("rotary")

# name -> (rope_theta, rope_type)
CASES = {
    "llama-2-7b": (1e4, "default"),
    "llama-3-8b": (5e5, "default"),
    "qwen2.5-7b-instruct-yarn": (1e6, "yarn"),
}


def config(name):
    return stored_config(name)


def parse_csv(text):
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["distance", "bound"]
    assert all(len(row) == 2 for row in rows[1:]), "every line is one distance and one bound"
    distances = np.array([int(row[0]) for row in rows[1:]], dtype=np.int64)
    bounds = np.array([float(row[1]) for row in rows[1:]], dtype=np.float64)
    return distances, bounds


def reference_bound(inv_freq, distances):
    """(1 / (d/2)) * sum_{j=1}^{d/2} |S_j|, S_j = sum_{k<j} e^{i r theta_k}, for each r."""
    theta = np.asarray(inv_freq, dtype=np.float64)
    r = distances.astype(np.float64)[:, None]
    partial = np.cumsum(np.exp(1j * r * theta[None, :]), axis=1)
    return np.abs(partial).mean(axis=1)


@pytest.fixture(scope="module", autouse=True)
def binary_exists():
    if not os.path.exists(CLI):
        pytest.fail(f"the rotary binary is not built at {CLI} (set ROTARY_CLI)")


@pytest.mark.parametrize("name", list(CASES))
def test_csv_equals_the_definition_recomputed_from_the_library_theta(name):
    record = config(name)
    rope = rotary.Rope(rotary.config_from_dict(record))
    assert (rope.config.rope_theta, rope.config.rope_type) == CASES[name]  # the cases of the spec

    distances, bounds = parse_csv(run("decay", name).stdout)
    pairs = rope.rotary_dim // 2

    # Plot-ready log-spaced distances: 0..10, increasing, up to twice the trained context.
    assert list(distances[:11]) == list(range(11))
    assert np.all(np.diff(distances) > 0)
    assert distances[-1] == 2 * record["max_position_embeddings"]
    assert len(distances) > 100

    np.testing.assert_allclose(bounds, reference_bound(rope.inv_freq, distances), rtol=1e-9, atol=0)
    # r = 0: S_j = j, so the bound is (d/2 + 1) / 2, with no attention factor.
    assert bounds[0] == (pairs + 1) / 2
    # Long-term decay: the far end is well below the near one.
    assert bounds[distances >= distances[-1] // 2].mean() < bounds[(distances >= 10) & (distances <= 20)].mean()


def test_yarn_bound_uses_the_scaled_frequencies():
    record = config("qwen2.5-7b-instruct-yarn")
    distances, bounds = parse_csv(run("decay", "qwen2.5-7b-instruct-yarn").stdout)
    unscaled = {k: v for k, v in record.items() if k != "rope_scaling"}
    plain = reference_bound(rotary.Rope(rotary.config_from_dict(unscaled)).inv_freq, distances)
    far = distances > 1000
    assert not np.allclose(bounds[far], plain[far], rtol=1e-3)
    # Interpolated low frequencies turn more slowly: the bound stays higher at long range.
    assert bounds[far].mean() > plain[far].mean()


def test_options_and_file_output(tmp_path):
    out = tmp_path / "decay.csv"
    run("decay", "llama-2-7b", "--max-distance", "5000", "--points-per-decade", "10", "--out", str(out))
    assert list(tmp_path.iterdir()) == [out], "no temporary file left behind"
    text = out.read_text()
    assert text == run("decay", "llama-2-7b", "--max-distance", "5000", "--points-per-decade", "10").stdout
    assert not any(line.startswith("#") or not line for line in text.splitlines())
    distances, bounds = parse_csv(text)
    assert distances[-1] == 5000
    assert 11 + 2 * 10 < len(distances) <= 11 + 3 * 10 + 1  # 10 .. 5000: 2.7 decades
    # A plain numeric table for plotting tools.
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(table[:, 0], distances)
    np.testing.assert_array_equal(table[:, 1], bounds)


def test_layer_types_are_chosen_as_for_the_other_commands():
    failed = run("decay", "gemma-3-12b-it", check=False)
    assert failed.returncode == 2 and "layer_type" in failed.stderr
    distances, bounds = parse_csv(run("decay", "gemma-3-12b-it", "--layer-type", "sliding_attention").stdout)
    rope = rotary.Rope(rotary.config_from_dict(config("gemma-3-12b-it"), layer_type="sliding_attention"))
    np.testing.assert_allclose(bounds, reference_bound(rope.inv_freq, distances), rtol=1e-9, atol=0)


@pytest.mark.parametrize(
    "option,value",
    [
        ("--max-distance", "0"),
        ("--max-distance", "-5"),
        ("--max-distance", "abc"),
        ("--max-distance", "1e3"),
        ("--max-distance", "9007199254740993"),
        ("--points-per-decade", "0"),
        ("--points-per-decade", "x"),
    ],
)
def test_bad_options_exit_2_with_one_line_naming_the_option(tmp_path, option, value):
    out = tmp_path / "decay.csv"
    result = run("decay", "llama-2-7b", f"{option}={value}", "--out", str(out), check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and option in lines[0] and value in lines[0], result.stderr
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == [], "a refused run leaves no file"


def test_unwritable_output_fails_and_leaves_nothing(tmp_path):
    result = run("decay", "llama-2-7b", "--out", str(tmp_path / "no" / "dir" / "d.csv"), check=False)
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_help():
    text = run("decay", "--help").stdout
    assert "--max-distance" in text and "--points-per-decade" in text and "--out" in text
