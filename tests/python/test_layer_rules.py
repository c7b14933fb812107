"""scripts/check_layers.py, the include rules of docs/ARCHITECTURE.md: it passes on the project and
fails on each kind of violation, in a small tree built here."""

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("check_layers", ROOT / "scripts" / "check_layers.py")
check_layers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_layers)


def test_the_project_keeps_its_layers():
    assert check_layers.check(ROOT) == []


def _tree(tmp_path, files):
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    # the known exceptions must exist, or the checker reports them as no longer needed
    for layer, header in check_layers.KNOWN_EXCEPTIONS:
        (tmp_path / header).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / header).write_text("")
        user = tmp_path / layer / f"uses_{pathlib.Path(header).stem}.cc"
        user.parent.mkdir(parents=True, exist_ok=True)
        user.write_text(f'#include "{pathlib.Path(header).relative_to("src")}"\n')  # found through src/
    return tmp_path


GOOD = {
    "include/rotary/rope.h": '#include <vector>\n#include "rotary/config.h"\n',
    "include/rotary/config.h": "",
    "src/rope.cc": '#include "rotary/rope.h"\n#include "validate.h"\n',
    "src/validate.h": "",
    "tools/main.cc": '#include "rotary/rope.h"\n#include "inspect.h"\n',
    "tools/inspect.h": "",
    "tests/rope_test.cc": '#include "validate.h"\n',
}


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("include/rotary/bad.h", '#include "validate.h"\n', "the public API includes only public headers"),
        ("src/bad.cc", '#include "inspect.h"\n', None),  # tools/inspect.h does not resolve from src/: fine
        ("tools/bad.cc", '#include "validate.h"\n', "public API (include/rotary/) only"),
        ("examples/bad.cc", "#include <rotary/validate.h>\n", "is not a public header"),
    ],
)
def test_each_violation_is_reported(tmp_path, name, text, expected):
    root = _tree(tmp_path, {**GOOD, name: text})
    problems = check_layers.check(root)
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1 and name in problems[0] and expected in problems[0], problems


def test_a_stale_exception_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(check_layers, "KNOWN_EXCEPTIONS", {("tools", "src/validate.h"): "a reason"})
    root = _tree(tmp_path, GOOD)
    assert check_layers.check(root) == []  # tools/uses_validate.cc includes it: the exception holds
    (root / "tools" / "uses_validate.cc").unlink()
    assert any("no longer needed" in p and "validate" in p for p in check_layers.check(root))
    assert check_layers.main(["check_layers.py", str(root)]) == 1
