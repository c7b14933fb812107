"""The bundled real model configs: plain config.json files (tests/data/configs/NAME.json) with their
provenance beside them (sources/NAME.json), read by path or by name with one rule everywhere
(rotary.Rope, config_from_file, rope_layer_types, verify), and the list of names that work.

The stored files are read here with json and compared field by field; what rotary reads from a
name, a path and a dict of the same file must be the same configuration."""

import json
import os
import pathlib
import re

import pytest

import rotary

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "data" / "configs"
STORED = sorted(p.stem for p in CONFIGS.glob("*.json"))
# The stored configs rotary refuses, by what their files say: Qwen-1's remote-code dynamic NTK
# (use_dynamic_ntk) is not a transformers rope_type, so every reader refuses it by name.
REFUSED = [name for name in STORED if json.loads((CONFIGS / f"{name}.json").read_text()).get("use_dynamic_ntk")]


def stored_file(name):
    return json.loads((CONFIGS / f"{name}.json").read_text(encoding="utf-8"))


def fields(config):
    """Every resolved field of a RopeConfig, for comparing two (RopeConfig has no ==); its methods
    (unscaled, axis_name, ...) are not fields."""
    values = ((n, getattr(config, n)) for n in dir(config) if not n.startswith("_"))
    return {n: (list(v) if isinstance(v, (list, tuple)) else v) for n, v in values if not callable(v)}


def layer_types_of(name):
    return rotary.rope_layer_types(stored_file(name)) or [None]


def test_the_stored_data_is_what_the_package_reads():
    # The overlay / installed package reads the same files as the tests (rotary/configs).
    assert sorted(rotary.builtin_names() + list(rotary.refused_builtins())) == STORED
    assert REFUSED == ["qwen-1.8b-dynamic-ntk"]


@pytest.mark.parametrize("name", STORED)
def test_a_stored_file_is_a_plain_config_json_with_its_provenance_beside_it(name):
    config = stored_file(name)
    # A wrapper record ({"model", "source", "config"}) would hide every field from a reader.
    assert "model_type" in config and not {"config", "source"} & set(config)
    provenance = json.loads((CONFIGS / "sources" / f"{name}.json").read_text(encoding="utf-8"))
    assert provenance == rotary.builtin_source(name)
    assert set(provenance) == {"model", "source"} and provenance["model"]
    source = provenance["source"]
    assert source["repository"].count("/") == 1 and source["path"]
    assert re.fullmatch("[0-9a-f]{40}", source["commit"])


def test_every_provenance_file_has_its_config():
    assert sorted(p.stem for p in (CONFIGS / "sources").glob("*.json")) == STORED


@pytest.mark.parametrize("name", sorted(set(STORED) - set(REFUSED)))
def test_a_stored_file_loads_by_path_and_by_name_as_the_same_config(name):
    path = CONFIGS / f"{name}.json"
    for layer_type in layer_types_of(name):
        from_dict = fields(rotary.config_from_dict(stored_file(name), layer_type))
        assert fields(rotary.config_from_file(path, layer_type)) == from_dict
        assert fields(rotary.config_from_file(str(path), layer_type)) == from_dict
        assert fields(rotary.config_from_file(name, layer_type)) == from_dict
        assert fields(rotary.Rope(name, layer_type=layer_type).config) == from_dict
        assert fields(rotary.Rope(str(path), layer_type=layer_type).config) == from_dict
    assert rotary.rope_layer_types(name) == rotary.rope_layer_types(path) == rotary.rope_layer_types(stored_file(name))


def test_every_listed_name_builds_a_rope_for_each_of_its_layer_types():
    assert rotary.builtin_names() == sorted(set(STORED) - set(REFUSED))
    for name in rotary.builtin_names():
        for layer_type in layer_types_of(name):
            rope = rotary.Rope(name, layer_type=layer_type)
            assert 0 < rope.rotary_dim <= rope.head_dim, (name, layer_type)


def test_a_config_with_a_rope_per_layer_type_asks_for_one_by_name():
    with pytest.raises(rotary.Error, match="gemma-3-12b-it: layer_type: .*full_attention, sliding_attention"):
        rotary.Rope("gemma-3-12b-it")


@pytest.mark.parametrize("name", REFUSED)
def test_a_refused_stored_config_says_why_by_path_by_name_and_in_the_list(name):
    reason = rotary.refused_builtins()[name]
    assert reason.startswith("use_dynamic_ntk: ")
    assert name not in rotary.builtin_names()
    with pytest.raises(rotary.Error) as by_name:
        rotary.Rope(name)
    assert str(by_name.value) == f"{name}: {reason}"
    path = str(CONFIGS / f"{name}.json")
    with pytest.raises(rotary.Error) as by_path:
        rotary.config_from_file(path)
    assert str(by_path.value) == f"{path}: {reason}"


def test_an_unknown_name_lists_the_builtins():
    names = rotary.builtin_names()
    for read in (rotary.Rope, rotary.config_from_file, rotary.rope_layer_types):
        with pytest.raises(FileNotFoundError) as error:
            read("llama-3.1-8")
        message = str(error.value)
        assert message.startswith("llama-3.1-8: no such file, and not a built-in config")
        assert ", ".join(names) in message
        assert "qwen-1.8b-dynamic-ntk" not in message  # only the names that work
    with pytest.raises(rotary.Error) as error:
        rotary.verify(lambda q, k, positions: (q, k), expected="llama-3.1-8")
    assert error.value.argument == "expected" and ", ".join(names) in str(error.value)
    with pytest.raises(rotary.Error, match=re.escape(", ".join(names))):
        rotary.builtin_config("llama-3.1-8")


def test_an_existing_path_wins_over_a_builtin_of_the_same_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    own = {"model_type": "llama", "head_dim": 8, "rope_theta": 100.0}
    pathlib.Path("llama-3.1-8b").write_text(json.dumps(own))
    assert rotary.Rope("llama-3.1-8b").config.rope_theta == 100.0
    assert rotary.config_from_file("llama-3.1-8b").head_dim == 8
    # A path object is always a path: a missing one never falls back to a built-in.
    os.remove("llama-3.1-8b")
    assert rotary.Rope("llama-3.1-8b").config.rope_theta == 500000.0  # the stored file's rope_theta
    with pytest.raises(FileNotFoundError, match="^llama-3.1-8b: no such file$"):
        rotary.config_from_file(pathlib.Path("llama-3.1-8b"))
    os.mkdir("llama-3.1-8b")
    with pytest.raises(IsADirectoryError, match="llama-3.1-8b: a directory"):
        rotary.Rope("llama-3.1-8b")


def test_verify_takes_a_builtin_name_and_labels_it_with_its_model():
    def unrotated(q, k, positions):
        return q, k

    report = rotary.verify(unrotated, expected="llama-3-8b")
    assert not report.matches
    assert "Against llama-3-8b (meta-llama/Meta-Llama-3-8B): " in str(report)
