"""Every Python snippet of README.md runs: in a fresh namespace, after the context that
readme_snippets.py gives it, in a directory holding the stored configs under the paths the README
names. The C++ snippets are compiled by CTest (readme_cpp_snippets_*)."""

import json
from pathlib import Path

import pytest

import rotary
from readme_snippets import PYTHON_CONTEXTS, context_for, snippets

README = Path(__file__).resolve().parents[2] / "README.md"

# The config.json paths the README's snippets open, and the stored real configs they stand for.
CONFIG_PATHS = {
    "Llama-3.1-8B/config.json": "llama-3.1-8b",
    "Qwen2.5-VL-7B-Instruct/config.json": "qwen2.5-vl-7b-instruct",
    "Llama-4-Scout-17B-16E-Instruct/config.json": "llama-4-scout-17b-16e-instruct",
}

PYTHON_SNIPPETS = snippets(README, "python")


def test_the_readme_has_python_snippets():
    # Guards the extraction itself: a changed fence syntax must not turn this file into no tests.
    assert len(PYTHON_SNIPPETS) >= 5


@pytest.fixture
def model_dirs(tmp_path, monkeypatch):
    for path, name in CONFIG_PATHS.items():
        (tmp_path / path).parent.mkdir(parents=True)
        (tmp_path / path).write_text(json.dumps(rotary.builtin_config(name)), encoding="utf-8")
    (tmp_path / "tests").symlink_to(README.parent / "tests")  # the README's paths into the repository
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("line", "code"), PYTHON_SNIPPETS, ids=[f"README.md:{line}" for line, _ in PYTHON_SNIPPETS])
def test_python_snippet_runs(line, code, model_dirs, capsys):
    context = context_for(code, PYTHON_CONTEXTS)
    assert context is not None, f"README.md:{line}: give this snippet exactly one context in readme_snippets.py"
    namespace = {"__name__": f"readme_line_{line}"}
    exec(compile(context, "context", "exec"), namespace)
    exec(compile(code, f"README.md:{line}", "exec"), namespace)


def test_the_paths_the_readme_opens_are_the_ones_provided():
    text = README.read_text(encoding="utf-8")
    opened = {p for p in CONFIG_PATHS if p in text}
    assert opened == set(CONFIG_PATHS), "a README path the snippets no longer open: drop it from CONFIG_PATHS"
