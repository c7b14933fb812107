"""End-to-end tests of `rotary families`: the family sweep's result embedded in the binary, checked
against tests/data/families.json as committed. The binary is $ROTARY_CLI, or build/tools/rotary
under the repository root."""

import collections
import json

import pytest

from cli_runner import ROOT, run

STORED = json.loads((ROOT / "tests" / "data" / "families.json").read_text(encoding="utf-8"))["families"]


def test_summary_counts_are_the_files():
    counts = collections.Counter(f["state"] for f in STORED.values())
    lines = run("families").stdout.splitlines()
    assert lines[-1] == (
        f"families: {counts['match']} match, {counts['refused']} refused, "
        f"{counts['mismatch']} known mismatches, {counts['unchecked']} unchecked"
    )
    assert [line.split()[0] for line in lines[:-1]] == sorted(STORED)
    cohere = next(line.split() for line in lines if line.startswith("cohere "))
    assert cohere[1:4] == ["match", "interleaved", "cohere"]


def test_json_holds_every_family():
    records = json.loads(run("families", "--json").stdout)
    assert [r["family"] for r in records] == sorted(STORED)
    for r in records:
        stored = STORED[r["family"]]
        assert (r["state"], r["model_types"], r["detail"]) == (
            stored["state"],
            stored["model_types"],
            stored.get("detail", ""),
        )


def test_state_filter_lists_only_that_state():
    records = json.loads(run("families", "--state", "refused", "--json").stdout)
    assert {r["family"] for r in records} == {n for n, f in STORED.items() if f["state"] == "refused"}
    lines = run("families", "--state", "refused").stdout.splitlines()
    assert lines[:-1] and all(line.split()[1] == "refused" for line in lines[:-1])
    assert lines[-1].startswith("families: ")


def test_bad_state_is_a_usage_error():
    result = run("families", "--state", "maybe", check=False)
    assert result.returncode == 2
    assert "--state" in result.stderr


def test_the_package_reads_the_same_table():
    rotary = pytest.importorskip("rotary")
    if not hasattr(rotary, "families"):
        pytest.skip("this rotary package predates rotary.families()")
    assert json.loads(run("families", "--json").stdout) == rotary.families()
