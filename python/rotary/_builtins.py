"""The real model configurations bundled with rotary (tests/data/configs, installed as
rotary/configs): each record holds the RoPE fields of a published config.json and its source.
The same records are the command line's built-ins (`rotary list`)."""

import json
import os

_DIR = os.path.join(os.path.dirname(__file__), "configs")


def builtin_names():
    """The names of the bundled configurations, e.g. ``"llama-3.1-8b"`` (sorted).

    Returns
    -------
    list of str
        Empty when the package was installed without its data.
    """
    if not os.path.isdir(_DIR):
        return []
    return sorted(f[:-5] for f in os.listdir(_DIR) if f.endswith(".json"))


def builtin_record(name):
    """The record ``{"model", "source", "config"}`` of a bundled configuration, or None."""
    path = os.path.join(_DIR, f"{name}.json")
    if os.sep in name or "/" in name or not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def builtin_config(name):
    """The config dict (a model's config.json fields) of a bundled configuration.

    Parameters
    ----------
    name : str
        One of :func:`builtin_names`.

    Raises
    ------
    rotary.Error
        (a ValueError) when there is no such built-in.
    """
    record = builtin_record(name)
    if record is None:
        from ._errors import invalid

        raise invalid("name", f"{name!r} is not a built-in config; built-ins: {', '.join(builtin_names())}")
    return record["config"]
