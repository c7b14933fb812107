"""rotary.families(): the family sweep's committed result (tests/data/families.json), as the
installed package reads it. The sweep itself keeps the file current (test_families.py)."""

import collections
import json
import os

import rotary

RESULTS_FILE = os.path.join(os.path.dirname(__file__), "..", "data", "families.json")

with open(RESULTS_FILE, encoding="utf-8") as _f:
    STORED = json.load(_f)["families"]


def by_name():
    return {r["family"]: r for r in rotary.families()}


def test_every_family_of_the_file_is_in_the_table():
    table = rotary.families()
    assert [r["family"] for r in table] == sorted(STORED)
    for r in table:
        assert r["model_types"] == STORED[r["family"]]["model_types"]
        assert r["state"] == STORED[r["family"]]["state"]


def test_counts_by_state_are_the_files():
    assert collections.Counter(r["state"] for r in rotary.families()) == collections.Counter(
        f["state"] for f in STORED.values()
    )


def test_cohere_matches_interleaved():
    # Its configs never say so: the family registry pairs it (2j, 2j + 1), as CohereModel does.
    assert STORED["cohere"]["state"] == "match"
    cohere = by_name()["cohere"]
    assert (cohere["state"], cohere["layout"], cohere["detail"]) == ("match", "interleaved", "")
    assert cohere["rope_types"] == ["default", "linear", "dynamic", "yarn", "longrope", "llama3"]
    assert by_name()["llama"]["layout"] == "half_split"


def test_an_encoder_takes_its_family_layout():
    # PeAudioEncoderRotaryEmbedding pairs (2j, 2j + 1); its config's model_type is pe_audio_encoder,
    # which the registry reads as the pe_audio family.
    assert (by_name()["pe_audio"]["state"], by_name()["pe_audio"]["layout"]) == ("match", "interleaved")


def test_refused_and_unchecked_families_say_why():
    table = rotary.families()
    for r in table:
        if r["state"] != "match":
            assert r["detail"] == STORED[r["family"]]["detail"] and r["detail"], r
    nanochat = by_name()["nanochat"]
    assert nanochat["state"] == "refused"
    assert "minus the angle" in nanochat["detail"]
    assert nanochat["layout"] is None


def test_records_are_copies():
    rotary.families()[0]["model_types"].append("changed")
    assert "changed" not in rotary.families()[0]["model_types"]
