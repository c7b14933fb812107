"""Hostile configs end in rotary.Error naming what was passed: JSON nested far past the reader's depth
limit (64 levels of arrays and objects), files over its size limit (16 MiB), dicts that cannot be
written as JSON. None of them may crash the interpreter or be read whole into memory."""

import os

import pytest

import rotary

LLAMA = {"head_dim": 128, "rope_theta": 500000.0}


def deep_text(levels):
    return '{"head_dim": 64, "rope_scaling": ' + '{"a":' * levels + "1" + "}" * levels + "}"


def deep_dict(levels):
    value = 1
    for _ in range(levels):
        value = {"a": value}
    return {"head_dim": 64, "rope_scaling": value}


def error_of(fn):
    with pytest.raises(rotary.Error) as info:
        fn()
    return info.value


@pytest.fixture(params=["arrays", "rope_scaling"])
def deep_file(tmp_path, request):
    # A million nested arrays once crashed the interpreter (stack overflow in the core).
    path = tmp_path / "deep.json"
    path.write_text("[" * 1_000_000 + "]" * 1_000_000 if request.param == "arrays" else deep_text(1_000_000))
    return path


@pytest.mark.parametrize(
    "read",
    [
        lambda p: rotary.config_from_file(p),
        lambda p: rotary.config_from_file(str(p), vision=True),
        lambda p: rotary.Rope(str(p)),
        lambda p: rotary.Rope(p, vision=True),
        lambda p: rotary.rope_layer_types(p),
    ],
    ids=["config_from_file", "config_from_file-vision", "Rope", "Rope-vision", "rope_layer_types"],
)
def test_a_deeply_nested_file_is_refused_naming_the_file(deep_file, read):
    error = error_of(lambda: read(deep_file))
    assert str(error).startswith(f"{deep_file}: ")
    assert "nesting depth exceeds the limit of 64" in str(error)
    assert error.argument == str(deep_file) and error.code == "parse_error"


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:
        f.truncate(8 << 30)  # sparse: reading it whole would take 8 GiB
    for read in (rotary.config_from_file, lambda p: rotary.config_from_file(p, vision=True), rotary.rope_layer_types):
        error = error_of(lambda: read(path))  # noqa: B023 - error_of calls it at once
        assert str(error) == f"{path}: file of {8 << 30} bytes exceeds the size limit of 16 MiB"


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_an_endless_file_is_read_no_further_than_the_limit():
    error = error_of(lambda: rotary.rope_layer_types("/dev/zero"))
    assert str(error) == "/dev/zero: file exceeds the size limit of 16 MiB"


@pytest.mark.parametrize("levels", [100, 100_000])
@pytest.mark.parametrize(
    "read",
    [
        lambda c: rotary.config_from_dict(c),
        lambda c: rotary.config_from_dict(c, vision=True),
        lambda c: rotary.Rope(c),
        lambda c: rotary.rope_layer_types(c),
    ],
    ids=["config_from_dict", "config_from_dict-vision", "Rope", "rope_layer_types"],
)
def test_a_deeply_nested_dict_is_refused_naming_config(read, levels):
    # 100 levels pass json.dumps and meet the core's depth limit; 100000 exceed Python's recursion
    # limit inside json.dumps.
    error = error_of(lambda: read(deep_dict(levels)))
    assert error.argument == "config" and str(error).startswith("config: ")
    assert "depth" in str(error)


def test_a_dict_whose_walk_raises_is_refused_naming_config():
    class Hostile:
        def tolist(self):
            raise RuntimeError("no")

    error = error_of(lambda: rotary.config_from_dict({**LLAMA, "extra": Hostile()}))
    assert error.argument == "config" and "cannot be written as JSON" in str(error)


def test_nesting_up_to_the_limit_is_accepted(tmp_path):
    # The root is level 1; 63 more dicts reach the limit of 64, one more passes it.
    config = {**LLAMA, "extra": deep_dict(63)["rope_scaling"]}
    assert rotary.config_from_dict(config).head_dim == 128
    config = {**LLAMA, "extra": deep_dict(64)["rope_scaling"]}
    assert "depth" in str(error_of(lambda: rotary.config_from_dict(config)))
    path = tmp_path / "config.json"
    path.write_text('{"head_dim": 128, "extra": ' + "[" * 63 + "]" * 63 + "}")
    assert rotary.config_from_file(path).head_dim == 128
    assert rotary.rope_layer_types(path) == []
