"""The GGUF files of tests/data/gguf are exactly what make_fixtures.py writes with gguf-py's GGUFWriter.

The C++ reader's tests (tests/gguf_test.cc) read the committed files; regenerating them here and
comparing byte for byte shows that each one is the writer's own output for the values the script
states, not a hand-edited file."""

import importlib.metadata
import importlib.util
import pathlib

import pytest

pytest.importorskip("gguf", reason="regenerating the GGUF fixtures needs the gguf package (gguf==0.19.0)")

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "data" / "gguf"
WRITER_VERSION = "0.19.0"  # the version that wrote the committed files (tests/data/gguf/README.md)


def _make_fixtures():
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    version = importlib.metadata.version("gguf")
    if version != WRITER_VERSION:
        pytest.skip(f"the fixtures were written by gguf {WRITER_VERSION}; gguf {version} may lay them out differently")
    directory = tmp_path_factory.mktemp("gguf")
    _make_fixtures().write_all(directory)
    return directory


def test_every_committed_fixture_is_written_by_the_script():
    committed = sorted(p.name for p in FIXTURES.glob("*.gguf"))
    assert committed == sorted(_make_fixtures().FIXTURES)


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.gguf")))
def test_committed_fixture_equals_the_writers_output(regenerated, name):
    written = (regenerated / name).read_bytes()
    committed = (FIXTURES / name).read_bytes()
    assert written == committed, f"{name} differs from what make_fixtures.py writes; regenerate it"
    assert len(committed) < 20_000  # fixtures stay small
