"""The family sweep's result (tests/data/families.json, installed as rotary/families.json): every
RoPE family of transformers, and whether rotary reads it as transformers does. The same table is
the command line's `rotary families`."""

import functools
import json
import os

_FILE = os.path.join(os.path.dirname(__file__), "families.json")

# The RoPE types the sweep tries on each family's default config; its other cases are layer types
# ("default [sliding_attention]") and stored real configs.
_ROPE_TYPES = ("default", "linear", "dynamic", "yarn", "longrope", "llama3")


def _rope_types(cases):
    return [t for t in _ROPE_TYPES if any(c == t or c.startswith(t + " [") for c in cases)]


@functools.lru_cache(maxsize=1)
def _records():
    with open(_FILE, encoding="utf-8") as f:
        document = json.load(f)
    return tuple(
        {
            "family": name,
            "kind": family["kind"],
            "module": family["module"],
            "model_types": list(family["model_types"]),
            "state": family["state"],
            "layout": family.get("layout"),
            "rope_types": _rope_types(family["cases"]),
            "detail": family.get("detail", ""),
        }
        for name, family in sorted(document["families"].items())
    )


def families():
    """Every RoPE family of transformers 5.24 and how rotary reads it: the committed result of the
    family sweep (``tests/python/test_families.py``), which fails whenever it is stale.

    Returns
    -------
    list of dict
        One per family, sorted by name, with the keys:

        - ``family``: transformers' model folder, with the tower for a vision or audio encoder
          (``"qwen2_vl.vision"``);
        - ``kind``: ``"text"`` or ``"vision"``; ``module``: the class that computes its cos/sin;
        - ``model_types``: the config ``model_type`` values of the folder;
        - ``state``: ``"match"`` (rotary computes what transformers does), ``"refused"``
          (``rotary.Error`` names what is not supported), ``"mismatch"`` (a known difference) or
          ``"unchecked"`` (the sweep cannot drive the module);
        - ``layout``: the pairing rotary reads, ``"half_split"`` or ``"interleaved"``; None where no
          case was compared (refused or unchecked);
        - ``rope_types``: the RoPE types checked on its default config, e.g. ``["default", "yarn"]``;
        - ``detail``: why it is refused, mismatched or unchecked (``""`` for a match), after the
          case it comes from (``"default: ..."``).

    Examples
    --------
    >>> [f["layout"] for f in rotary.families() if f["family"] == "cohere"]
    ['interleaved']
    """
    return [dict(r, model_types=list(r["model_types"]), rope_types=list(r["rope_types"])) for r in _records()]
