"""scripts/check-cpp.sh and scripts/lint.sh, the style checks CI runs first: each fails on a file
that breaks its rules and passes once the file is fixed, in a small git tree built here (the
project's own tree must pass them, which the test command checks before building)."""

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _git_tree(tmp_path, copied, files):
    for name in copied:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)


def _run(tmp_path, script):
    return subprocess.run(["bash", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("clang-format-14") is None, reason="clang-format-14 is not installed")
def test_check_cpp_fails_on_an_unformatted_file_and_a_crossed_layer(tmp_path):
    copied = ["scripts/check-cpp.sh", "scripts/check_layers.py", ".clang-format"]
    _git_tree(
        tmp_path, copied, {"src/bad.cc": "int  f( int x ){return x;}\n", "src/private.h": "", "include/rotary/a.h": ""}
    )
    failed = _run(tmp_path, "scripts/check-cpp.sh")
    assert failed.returncode == 1 and "src/bad.cc: not formatted as clang-format-14" in failed.stderr
    (tmp_path / "src/bad.cc").write_text("int f(int x) { return x; }\n")
    assert _run(tmp_path, "scripts/check-cpp.sh").returncode == 0
    (tmp_path / "include/rotary/a.h").write_text('#include "private.h"\n')  # a public header goes private
    crossed = _run(tmp_path, "scripts/check-cpp.sh")
    assert crossed.returncode == 1 and "include/rotary/a.h" in crossed.stdout + crossed.stderr


def test_lint_fails_on_unformatted_or_flagged_python(tmp_path):
    pytest.importorskip("ruff")
    copied = ["scripts/lint.sh", "requirements-test.txt", "pyproject.toml"]
    _git_tree(tmp_path, copied, {"good.py": "x = 1\n"})
    if _run(tmp_path, "scripts/lint.sh").returncode != 0:
        pytest.skip("the pinned ruff is not the one installed")
    (tmp_path / "unformatted.py").write_text("x  =  [1,2]\n")
    failed = _run(tmp_path, "scripts/lint.sh")
    assert failed.returncode == 1 and "unformatted.py" in failed.stdout + failed.stderr
    (tmp_path / "unformatted.py").write_text("import os\n")  # formatted, but an unused import
    flagged = _run(tmp_path, "scripts/lint.sh")
    assert flagged.returncode == 1 and "F401" in flagged.stdout + flagged.stderr
    (tmp_path / "unformatted.py").unlink()
    assert _run(tmp_path, "scripts/lint.sh").returncode == 0, sys.version
