"""pytest set-up for rotary's Python tests: offline transformers, and the conformance table.

The suite never downloads: Hugging Face hub access is switched off before transformers is
imported, and every model configuration comes from tests/data/configs.
"""

import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest

from compare import CONFORMANCE_TABLE

_COLUMNS = [
    ("inv_freq bit-equal", "theta =="),
    ("cos/sin max err (hf theta)", "cos/sin err"),
    ("cos/sin bit-equal", "cos/sin =="),
    ("q/k f32 rel err", "q/k f32"),
    ("q/k f32 bit-equal", "q/k =="),
    ("same cos/sin: bit-equal", "same cos/sin"),
    ("bf16 ulps rotary", "bf16 rot"),
    ("bf16 ulps transformers", "bf16 hf"),
    ("f16 ulps rotary", "f16 rot"),
    ("f16 ulps transformers", "f16 hf"),
]


def pytest_terminal_summary(terminalreporter):
    # The property tests' example counts and worst errors, so that every log shows how much ran.
    properties = sys.modules.get("test_properties")
    lines = properties.summary_lines() if properties is not None else []
    if lines:
        terminalreporter.section("property-based tests (hypothesis)")
        for line in lines:
            terminalreporter.write_line(line)
    if CONFORMANCE_TABLE:
        _conformance_table(terminalreporter)
    _families_summary(terminalreporter)


def _conformance_table(terminalreporter):
    header = ["model"] + [short for _, short in _COLUMNS]
    rows = [
        [model] + [CONFORMANCE_TABLE[model].get(col, "-") for col, _ in _COLUMNS] for model in sorted(CONFORMANCE_TABLE)
    ]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    terminalreporter.section("rotary vs transformers (conformance)")
    terminalreporter.write_line(
        "theta ==: inv_freq entries bit-equal to transformers'. cos/sin: worst absolute error and share of "
        "bit-equal values, transformers' theta. q/k f32: max|err| / max|transformers|, and share bit-equal; "
        "same cos/sin: q/k bit-identical when transformers' apply is fed rotary's cos/sin. "
        "bf16/f16 (rotary and transformers): worst error against a float64 oracle (hf angles) in storage ulps "
        "of the output, over elements that do not cancel / in storage ulps at the input pair's scale, over all"
    )
    for r in [header] + rows:
        terminalreporter.write_line("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def _families_summary(terminalreporter):
    # The sweep of every RoPE family of transformers (test_families.py): the count line last, and
    # with -v the table of families before it.
    sweep = sys.modules.get("test_families")
    lines = sweep.summary_lines(terminalreporter.config.option.verbose > 0) if sweep is not None else []
    if lines:
        terminalreporter.section("RoPE families of transformers (test_families.py)")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _quiet_transformers():
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        yield
