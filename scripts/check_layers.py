#!/usr/bin/env python3
"""Checks that every C++ file includes only what its layer may include (docs/ARCHITECTURE.md).

The layers, from the bottom:
- include/rotary/  the public API: the standard library and other public headers only.
- src/             the library: the public API and its own private headers (src/...).
- python/src/, tools/, bench/, examples/
                   users of the library: the public API, and their own directory's headers.
- tests/           may include anything (they test private parts too).

A quoted include is resolved the way the build resolves it: against the including file's
directory, then include/ and src/. Angle-bracket includes are system or third-party headers and
are not checked, except <rotary/...>, which must name a public header.

KNOWN_EXCEPTIONS lists the private headers that users of the library may still include, each with
its reason (none today); the check fails on any other, and on an exception that is no longer
needed, so the list only shrinks. Exit status 0 when the rules hold, 1 with one line per violation otherwise.

    python3 scripts/check_layers.py [ROOT]
"""

import pathlib
import re
import sys

SOURCES = ("*.h", "*.cc", "*.cu", "*.cuh")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.MULTILINE)

# (including directory, private header) -> why it is still included, until it is moved behind the
# API. Empty: every user of the library goes through the public API.
KNOWN_EXCEPTIONS = {}

USERS = ("python/src", "tools", "bench", "examples")


def layer_of(path):
    """The layer of a file, by its path relative to the root."""
    parts = path.parts
    if parts[:2] == ("include", "rotary"):
        return "api"
    if parts[0] == "src":
        return "library"
    for user in USERS:
        if path.as_posix().startswith(user + "/"):
            return user
    if parts[0] == "tests":
        return "tests"
    return None


def resolve(root, including, name):
    """The included file relative to the root, or None for a header outside the project."""
    for base in (including.parent, pathlib.Path("include"), pathlib.Path("src")):
        candidate = base / name
        if (root / candidate).is_file():
            return pathlib.Path(*(root / candidate).resolve().relative_to(root.resolve()).parts)
    return None


def violation(layer, target):
    """Why `layer` may not include `target` (a path relative to the root), or None."""
    target_layer = layer_of(target)
    if layer == "tests" or target_layer == "api":
        return None
    if layer == "api":
        return "the public API includes only public headers"
    if layer == "library":
        return None if target_layer == "library" else "the library includes only itself and the API"
    if target.as_posix().startswith(layer + "/"):
        return None  # a user's own headers
    if (layer, target.as_posix()) in KNOWN_EXCEPTIONS:
        return None
    return f"{layer} uses the library through its public API (include/rotary/) only"


def check(root):
    root = pathlib.Path(root)
    problems, used = [], set()
    files = sorted(f for pattern in SOURCES for f in root.rglob(pattern) if f.is_file())
    for file in files:
        path = file.relative_to(root)
        layer = layer_of(path)
        if layer is None or "build" in path.parts:
            continue
        for line_number, (bracket, name) in _includes(file):
            if bracket == "<" and not name.startswith("rotary/"):
                continue
            target = resolve(root, path, name)
            if target is None:
                if bracket == "<":
                    problems.append(f"{path}:{line_number}: <{name}> is not a public header")
                continue
            if (layer, target.as_posix()) in KNOWN_EXCEPTIONS:
                used.add((layer, target.as_posix()))
            why = violation(layer, target)
            if why:
                problems.append(f"{path}:{line_number}: includes {target}: {why}")
    for layer, header in sorted(set(KNOWN_EXCEPTIONS) - used):
        problems.append(
            f"scripts/check_layers.py: the exception for {layer} including {header} is no longer needed; remove it"
        )
    return problems


def _includes(file):
    text = file.read_text(encoding="utf-8", errors="replace")
    for match in INCLUDE.finditer(text):
        yield text.count("\n", 0, match.start()) + 1, (match.group(1), match.group(2))


def main(argv):
    root = argv[1] if len(argv) > 1 else pathlib.Path(__file__).resolve().parent.parent
    problems = check(root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} include(s) break the layer rules (docs/ARCHITECTURE.md)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
