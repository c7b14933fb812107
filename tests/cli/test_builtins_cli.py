"""The command line's built-in configs: `rotary list` against the Python package's list, every
stored config.json read by path and by name alike, the rule for a name that is also a path, and
the error for an unknown name."""

import json
import os
import subprocess

import pytest

from cli_runner import CLI, CONFIGS, STORED, run, stored_config

rotary = pytest.importorskip("rotary")


@pytest.fixture(scope="module", autouse=True)
def binary_exists():
    if not os.path.exists(CLI):
        pytest.fail(f"the rotary binary is not built at {CLI} (set ROTARY_CLI)")


def provenance(name):
    return json.loads((CONFIGS / "sources" / f"{name}.json").read_text(encoding="utf-8"))


def layer_args(name):
    return [["--layer-type", t] for t in rotary.rope_layer_types(stored_config(name))] or [[]]


def test_list_json_agrees_with_the_python_package():
    listed = json.loads(run("list", "--json").stdout)
    assert [b["name"] for b in listed["builtins"]] == rotary.builtin_names()
    assert {r["name"]: r["reason"] for r in listed["refused"]} == rotary.refused_builtins()
    assert sorted([b["name"] for b in listed["builtins"]] + [r["name"] for r in listed["refused"]]) == STORED
    for b in listed["builtins"]:
        assert b["model"] == provenance(b["name"])["model"]
        assert b["layer_types"] == rotary.rope_layer_types(stored_config(b["name"]))
        assert b["source"] == {k: provenance(b["name"])["source"][k] for k in ("repository", "path", "commit")}
    # Qwen-1's remote-code dynamic NTK, by what its file says.
    assert [r["name"] for r in listed["refused"]] == [n for n in STORED if stored_config(n).get("use_dynamic_ntk")]


def test_list_shows_what_works_then_what_is_refused_and_why():
    text = run("list").stdout
    listed, _, refused = text.partition("\nstored but refused")
    rows = [line.split() for line in listed.splitlines()]
    assert [row[0] for row in rows] == rotary.builtin_names()
    for row in rows:
        assert row[1] == provenance(row[0])["model"].split()[0]
    gemma = next(line for line in listed.splitlines() if line.startswith("gemma-3-12b-it "))
    assert gemma.endswith("[needs --layer-type full_attention or sliding_attention]")
    for name, reason in rotary.refused_builtins().items():
        assert f"  {name}: {reason}\n" in refused


@pytest.mark.parametrize("name", STORED)
def test_every_stored_file_inspects_by_path_as_by_name(name):
    """Each listed name passes inspect (for each of its layer types); by path it gives the same
    report but for what it is called. A refused one fails alike, with its reason."""
    path = str(CONFIGS / f"{name}.json")
    if name in rotary.refused_builtins():
        reason = rotary.refused_builtins()[name]
        for argument in (name, path):
            result = run("inspect", argument, check=False)
            assert (result.returncode, result.stderr) == (2, f"rotary: {argument}: {reason}\n")
        return
    assert name in rotary.builtin_names()
    source = provenance(name)["source"]
    for layer in layer_args(name):
        by_name = json.loads(run("inspect", name, "--json", *layer).stdout)
        by_path = json.loads(run("inspect", path, "--json", *layer).stdout)
        assert (by_name["model"], by_name["source"]) == (
            provenance(name)["model"],
            f"{source['repository']} {source['path']} @ {source['commit']}",
        )
        assert (by_path["model"], by_path["source"]) == (path, path)
        for report in (by_name, by_path):
            del report["model"], report["source"]
        assert by_name == by_path


def test_an_unknown_name_lists_the_builtins():
    result = run("inspect", "llama-3.1-8", check=False)
    assert result.returncode == 2
    assert "llama-3.1-8: no such file, and not a built-in config" in result.stderr
    assert "built-ins: " + ", ".join(rotary.builtin_names()) + ";" in result.stderr
    assert "qwen-1.8b-dynamic-ntk" not in result.stderr


def test_an_existing_path_wins_over_a_builtin_of_the_same_name(tmp_path):
    (tmp_path / "llama-3.1-8b").write_text(json.dumps({"model_type": "llama", "head_dim": 8, "rope_theta": 100.0}))

    def inspect_in(directory):
        result = subprocess.run(
            [CLI, "inspect", "llama-3.1-8b", "--json"], cwd=directory, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    own = inspect_in(tmp_path)
    assert (own["model"], own["head_dim"], own["rope_theta"]) == ("llama-3.1-8b", 8, 100.0)
    (tmp_path / "llama-3.1-8b").unlink()
    builtin = inspect_in(tmp_path)
    assert (builtin["model"], builtin["rope_theta"]) == ("meta-llama/Llama-3.1-8B", 500000.0)
