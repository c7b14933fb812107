"""Every RoPE family of the installed transformers (5.24), found in its source, against rotary.

families.py enumerates the modeling files that rotate by position and checks each rotary module
class (a text model, a vision or audio tower) on transformers' own default config, the scaled RoPE
types the module accepts, its layer types and the real configs stored for it, against transformers'
own module and apply function (see families.py for what is compared and the tolerances).

Each family ends in one state: match, refused (rotary raised rotary.Error), mismatch or unchecked.
A mismatch or an unchecked family fails, unless it is listed below: KNOWN_MISMATCHES are the
towers and cases rotary still reads differently, each with its diagnosis, UNCHECKED are modules
this sweep cannot drive. Both are strict
xfails, so a family that starts to match fails until its entry is removed.

tests/data/families.json holds the whole result (every family's state, its worst diagnosis, each
case's state); the test regenerates it and fails when it differs (numbers inside messages are not
compared: torch's float32 values may differ by an ulp on another CPU). ROTARY_UPDATE_FAMILIES=1
rewrites it.
"""

import difflib
import json
import os

import pytest

import families

RESULTS_FILE = os.path.join(os.path.dirname(__file__), "..", "data", "families.json")
UPDATE = os.environ.get("ROTARY_UPDATE_FAMILIES") == "1"

# --- what rotary still reads differently, each confirmed by the sweep's diagnosis -----------------
# (family: diagnosis). Empty: every family the sweep drives matches or is refused by name.

KNOWN_MISMATCHES = {}

# --- modules the sweep cannot drive (family: reason) ---------------------------------------------

UNCHECKED = {}


class Mismatch(AssertionError):
    """rotary loaded the family's config and rotated differently."""


class NotChecked(AssertionError):
    """The sweep could not drive the family's module."""


def _marks(name):
    if name in KNOWN_MISMATCHES:
        return [pytest.mark.xfail(raises=Mismatch, strict=True, reason=KNOWN_MISMATCHES[name])]
    if name in UNCHECKED:
        return [pytest.mark.xfail(raises=NotChecked, strict=True, reason=UNCHECKED[name])]
    return []


@pytest.mark.parametrize("name", [pytest.param(n, id=n, marks=_marks(n)) for n in families.family_names()])
def test_family(name):
    result = families.check_all()[name]
    if result.state == "mismatch":
        raise Mismatch(f"{name}: {result.detail}")
    if result.state == "unchecked":
        raise NotChecked(f"{name}: {result.detail}")
    assert result.state in ("match", "refused")


def test_the_lists_name_families_that_exist():
    names = set(families.family_names())
    assert not set(KNOWN_MISMATCHES) - names, set(KNOWN_MISMATCHES) - names
    assert not set(UNCHECKED) - names, set(UNCHECKED) - names
    assert not set(KNOWN_MISMATCHES) & set(UNCHECKED)


def test_the_enumeration_comes_from_transformers_source():
    """RoFormer rotates through its sinusoidal table and apply_rotary_position_embeddings, with no
    RotaryEmbedding class; files that only register apply_rotary_pos_emb as a kernel are excluded."""
    found, excluded = families.discover()
    roformer = families.family("roformer")
    assert roformer.cls.__name__ == "RoFormerSinusoidalPositionalEmbedding"
    assert families.choose_apply(roformer, None).__name__ == "apply_rotary_position_embeddings"
    assert {"llama", "qwen2_vl", "qwen2_vl.vision", "gptj", "deepseek_v3"} <= {f.name for f in found}
    assert "jamba" in excluded
    assert len(found) > 200


def test_results_file_is_current():
    document = families.results_document()
    if UPDATE:
        with open(RESULTS_FILE, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=1, ensure_ascii=False)
            f.write("\n")
    with open(RESULTS_FILE, encoding="utf-8") as f:
        stored = json.load(f)
    if stored.get("transformers") != document["transformers"]:
        pytest.skip(
            f"{RESULTS_FILE} was written with transformers {stored.get('transformers')}, "
            f"this is {document['transformers']}"
        )
    ours, theirs = families.comparable(document), families.comparable(stored)
    if ours != theirs:
        diff = difflib.unified_diff(
            json.dumps(theirs, indent=1).splitlines(),
            json.dumps(ours, indent=1).splitlines(),
            "tests/data/families.json",
            "this run",
            lineterm="",
            n=1,
        )
        pytest.fail(
            "tests/data/families.json is stale (ROTARY_UPDATE_FAMILIES=1 rewrites it):\n" + "\n".join(list(diff)[:80])
        )


def summary_lines(verbose=False):
    """For the terminal summary: the table (verbose runs) and the count line."""
    results = families.check_all.cache_info().currsize and families.check_all()
    if not results:
        return []
    return (families.table_lines(results) if verbose else []) + [families.summary_line(results, KNOWN_MISMATCHES)]
