"""pytest set-up for rotary's Python tests: offline transformers, and the conformance table.

The suite never downloads: Hugging Face hub access is switched off before transformers is
imported, and every model configuration comes from tests/data/configs.
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest  # noqa: E402

# model -> {column: text}; filled by test_conformance.py, printed after the run.
CONFORMANCE_TABLE = {}

_COLUMNS = [
    ("inv_freq bit-equal", "theta =="),
    ("cos/sin max err (hf theta)", "cos/sin err"),
    ("cos/sin bit-equal", "cos/sin =="),
    ("q/k f32 rel err", "q/k f32"),
    ("q/k f32 bit-equal", "q/k =="),
    ("bf16 ulps rotary", "bf16 rot"),
    ("bf16 ulps transformers", "bf16 hf"),
    ("f16 ulps rotary", "f16 rot"),
    ("f16 ulps transformers", "f16 hf"),
]


def record(model, column, text):
    CONFORMANCE_TABLE.setdefault(model, {})[column] = text


def pytest_terminal_summary(terminalreporter):
    if not CONFORMANCE_TABLE:
        return
    header = ["model"] + [short for _, short in _COLUMNS]
    rows = [[model] + [CONFORMANCE_TABLE[model].get(col, "-") for col, _ in _COLUMNS]
            for model in sorted(CONFORMANCE_TABLE)]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    terminalreporter.section("rotary vs transformers (conformance)")
    terminalreporter.write_line("errors: cos/sin absolute; q/k max|err|/max|ref| (f32, transformers' theta); "
                                "16-bit: worst error in storage ulps against a float64 oracle")
    for r in [header] + rows:
        terminalreporter.write_line("  ".join(c.ljust(w) for c, w in zip(r, widths)))


@pytest.fixture(autouse=True)
def _quiet_transformers():
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        yield
