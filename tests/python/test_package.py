"""The installed package as pip leaves it: one version everywhere, the `rotary` command (the C++ tool
inside the wheel, `rotary plot` in Python), type information (py.typed and the extension's stub),
the license, and the build's message when a system prerequisite is missing.

The tests of the installed files skip when `rotary` is imported from a source overlay rather than an
installed distribution; scripts/test.sh installs the wheel, so there they run."""

import ast
import importlib.metadata
import os
import pathlib
import re
import shutil
import subprocess
import sys
import types

import pytest

import rotary
import rotary.__main__ as command
from rotary import _rotary

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dist():
    """The installed distribution `rotary` is imported from."""
    try:
        found = importlib.metadata.distribution("rotary")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("rotary is not installed as a distribution (imported from a source overlay)")
    if pathlib.Path(found.locate_file("rotary/__init__.py")).resolve() != pathlib.Path(rotary.__file__).resolve():
        pytest.skip(f"rotary is imported from {rotary.__file__}, not from the installed distribution")
    return found


def installed_file(dist, *parts):
    """The path of a file the distribution's RECORD lists, ending in `parts`; fails when it is not listed."""
    matches = [f for f in dist.files if f.parts[-len(parts) :] == parts]
    assert matches, f"{'/'.join(parts)} is not among the installed files of rotary {dist.version}"
    return pathlib.Path(dist.locate_file(matches[0]))


def console_script(dist):
    """The `rotary` command pip wrote into the environment's scripts directory."""
    return installed_file(dist, "bin", "rotary")


def cmake_project_version():
    """The version in project(rotary VERSION x.y.z), the one place it is written."""
    match = re.search(r"project\(rotary\s+VERSION\s+(\d+\.\d+\.\d+)", (ROOT / "CMakeLists.txt").read_text())
    assert match, "no project(rotary VERSION x.y.z) in CMakeLists.txt"
    return match.group(1)


def version_printed(*command_line):
    result = subprocess.run(list(map(str, command_line)), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    name, version = result.stdout.split()
    assert name == "rotary"
    return version


def test_one_version_everywhere(dist):
    expected = cmake_project_version()
    assert dist.version == expected  # the wheel's metadata
    assert rotary.__version__ == expected
    assert _rotary.__version__ == expected
    assert version_printed(console_script(dist), "--version") == expected
    assert version_printed(sys.executable, "-m", "rotary", "--version") == expected
    cli = pathlib.Path(os.environ.get("ROTARY_CLI", ROOT / "build" / "tools" / "rotary"))
    if cli.is_file():  # the CMake build's tool, when there is one
        assert version_printed(cli, "--version") == expected


def test_console_script_is_the_module_entry_point(dist):
    (entry,) = [e for e in dist.entry_points if e.group == "console_scripts" and e.name == "rotary"]
    assert entry.value == "rotary.__main__:main"
    assert installed_file(dist, "rotary", "_bin", "rotary").resolve() == command.TOOL
    assert os.access(command.TOOL, os.X_OK)


@pytest.mark.parametrize("launcher", ["script", "module"])
def test_command_passes_arguments_and_exit_status_through(dist, launcher):
    prefix = [console_script(dist)] if launcher == "script" else [sys.executable, "-m", "rotary"]
    listed = subprocess.run([*prefix, "list"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "llama-3.1-8b" in listed.stdout.split()
    refused = subprocess.run([*prefix, "inspect", "no-such-model"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2  # the tool's code for bad input
    assert "no-such-model" in refused.stderr
    assert refused.stderr.startswith("rotary: ")  # argv[0] is the command's name, not the path in the package


def test_typed_package_with_the_extension_stub(dist):
    assert installed_file(dist, "rotary", "py.typed").is_file()
    assert installed_file(dist, "rotary", "_rotary.pyi").is_file()


def _names_defined(body):
    names = set()
    for node in body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(alias.asname for alias in node.names if alias.asname)  # explicit re-exports only
    return names


def _public(namespace):
    return {name for name in vars(namespace) if not name.startswith("_")}


def test_stub_names_every_public_object_of_the_extension(dist):
    stub = ast.parse(installed_file(dist, "rotary", "_rotary.pyi").read_text())
    assert _public(_rotary) <= _names_defined(stub.body), "missing from _rotary.pyi"
    classes = {node.name: node for node in stub.body if isinstance(node, ast.ClassDef)}
    for name in sorted(_public(_rotary)):
        value = getattr(_rotary, name)
        if isinstance(value, type) and name in classes:
            missing = _public(value) - _names_defined(classes[name].body)
            assert not missing, f"_rotary.pyi: class {name} lacks {sorted(missing)}"


def test_license_metadata(dist):
    assert dist.metadata["License-Expression"] == "Apache-2.0"
    assert dist.metadata.get_all("License-File") == ["LICENSE"]
    shipped = installed_file(dist, "licenses", "LICENSE").read_text()
    assert shipped == (ROOT / "LICENSE").read_text()
    assert "Apache License" in shipped and "Version 2.0, January 2004" in shipped


# ---- dispatch (no installed tool needed) -----------------------------------------------------------


def test_plot_runs_in_python_with_the_arguments_after_it(monkeypatch):
    calls = []
    plot = types.ModuleType("rotary.plot")
    plot.main = lambda argv: calls.append(argv) or 7
    monkeypatch.setitem(sys.modules, "rotary.plot", plot)
    monkeypatch.setattr(rotary, "plot", plot, raising=False)
    monkeypatch.setattr(os, "execv", lambda *a: pytest.fail(f"the tool ran: {a}"))
    assert command.main(["plot", "llama-3.1-8b", "--out", "x.png"]) == 7
    assert calls == [["llama-3.1-8b", "--out", "x.png"]]


class _Ran(Exception):
    pass


def _record_execv(monkeypatch, tmp_path):
    """Points the command at a stand-in tool and records what os.execv is asked to run."""
    tool = tmp_path / "rotary"
    tool.write_text("")
    monkeypatch.setattr(command, "TOOL", tool)
    ran = []

    def execv(path, argv):
        ran.append((path, argv))
        raise _Ran

    monkeypatch.setattr(os, "execv", execv)
    return tool, ran


@pytest.mark.skipif(os.name != "posix", reason="os.execv is the POSIX path")
def test_without_rotary_plot_the_tool_answers_plot(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "rotary.plot", None)  # makes `from . import plot` fail as if absent
    monkeypatch.delattr(rotary, "plot", raising=False)
    tool, ran = _record_execv(monkeypatch, tmp_path)
    with pytest.raises(_Ran):
        command.main(["plot", "llama-3.1-8b", "--out", "x.svg"])
    assert ran == [(tool, ["rotary", "plot", "llama-3.1-8b", "--out", "x.svg"])]


@pytest.mark.skipif(os.name != "posix", reason="os.execv is the POSIX path")
def test_a_python_subcommand_whose_module_is_absent_goes_to_the_tool(monkeypatch, tmp_path):
    monkeypatch.setattr(command, "PYTHON_SUBCOMMANDS", {"plot", "no_such_module"})
    tool, ran = _record_execv(monkeypatch, tmp_path)
    with pytest.raises(_Ran):
        command.main(["no_such_module", "--flag"])
    assert ran == [(tool, ["rotary", "no_such_module", "--flag"])]


@pytest.mark.skipif(os.name != "posix", reason="os.execv is the POSIX path")
def test_other_subcommands_go_to_the_tool(monkeypatch, tmp_path):
    tool, ran = _record_execv(monkeypatch, tmp_path)
    for args in (["inspect", "llama-3.1-8b", "--json"], ["--version"], []):
        with pytest.raises(_Ran):
            command.main(args)
    assert ran == [(tool, ["rotary", *args]) for args in (["inspect", "llama-3.1-8b", "--json"], ["--version"], [])]


def test_missing_tool_is_reported(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(command, "TOOL", tmp_path / "absent")
    assert command.main(["list"]) == 2
    assert "not part of this installation" in capsys.readouterr().err


# ---- the build's prerequisites -------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")
@pytest.mark.parametrize(
    ("package", "debian_package"),
    [("nlohmann_json", "nlohmann-json3-dev"), ("hwy", "libhwy-dev"), ("CLI11", "libcli11-dev")],
)
def test_missing_prerequisite_is_named_with_its_debian_package(tmp_path, package, debian_package):
    """Configures the project (tool on, nothing else) as if `package` were not installed."""
    options = ["-DROTARY_BUILD_TESTS=OFF", "-DROTARY_BUILD_EXAMPLES=OFF", "-DROTARY_CUDA=OFF"]
    result = subprocess.run(
        ["cmake", "-S", ROOT, "-B", tmp_path, *options, f"-DCMAKE_DISABLE_FIND_PACKAGE_{package}=ON"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    message = " ".join(result.stderr.split())  # CMake wraps long messages
    assert "rotary needs" in message and f"'{package}'" in message, result.stderr
    assert f"sudo apt-get install {debian_package}" in message, result.stderr
