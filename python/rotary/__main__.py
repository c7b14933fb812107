"""The ``rotary`` command installed by pip, and ``python -m rotary``: runs the C++ command-line tool
that the wheel carries (``rotary/_bin/rotary``) with the same arguments and exit status.

One subcommand is Python's: ``rotary plot`` draws with matplotlib (:func:`rotary.plot.main`). Every
other subcommand, ``--help`` and ``--version`` are the tool's, so that the command behaves as the
tool built by CMake does.
"""

import importlib
import os
import pathlib
import subprocess
import sys

#: Where the wheel installs the tool (ROTARY_CLI_DESTINATION in pyproject.toml).
TOOL = pathlib.Path(__file__).resolve().parent / "_bin" / ("rotary.exe" if os.name == "nt" else "rotary")
#: Subcommands written in Python: module rotary.NAME, whose main(argv) takes the arguments after NAME.
PYTHON_SUBCOMMANDS = {"plot"}


def _python_subcommand(name):
    """The ``main(argv) -> int`` of a subcommand written in Python, or None when this installation has
    no such module (the tool then answers, as it does for every other subcommand)."""
    if name not in PYTHON_SUBCOMMANDS:
        return None
    module = f"{__package__}.{name}"
    try:
        # import_module, not `from . import`: only it reports an absent submodule as ModuleNotFoundError.
        return importlib.import_module(module).main
    except ModuleNotFoundError as e:
        if e.name != module:
            raise  # the module exists but something it imports is missing: say so, do not hide it
        return None


def main(argv=None):
    """Runs ``rotary ARGS``; `argv` defaults to the command line's arguments (without the program name).

    Returns the exit status. On POSIX the tool replaces this process (``os.execv``), so its exit
    status, signals and terminal are the process's own and nothing returns.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    if args:
        python_main = _python_subcommand(args[0])
        if python_main is not None:
            return python_main(args[1:])
    if not TOOL.is_file():
        print(
            f"rotary: the command-line tool is not part of this installation (no {TOOL}); "
            "install the package with pip, or build the tool with CMake (build/tools/rotary)",
            file=sys.stderr,
        )
        return 2
    # argv[0] "rotary" is the name the tool's usage and error messages show.
    if os.name == "posix":
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(TOOL, ["rotary", *args])
    return subprocess.call([str(TOOL), *args])


if __name__ == "__main__":
    sys.exit(main())
