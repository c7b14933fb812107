"""The real model configurations bundled with rotary (tests/data/configs, installed as
rotary/configs): each NAME.json is a published config.json's RoPE fields, exactly as the model's
file spells them, and sources/NAME.json says where they were read ({"model", "source"}). The same
files are the command line's built-ins (``rotary list``).

A built-in's name is accepted wherever a config path is (:class:`rotary.Rope`,
:func:`rotary.config_from_file`, :func:`rotary.verify`, the command line), by one rule: an
existing path is read as a file, any other string must be a built-in's name.
"""

import functools
import json
import os

from ._errors import invalid

_DIR = os.path.join(os.path.dirname(__file__), "configs")
_SOURCES = os.path.join(_DIR, "sources")


def _stored_names():
    """Every stored configuration, those rotary refuses included (sorted)."""
    if not os.path.isdir(_DIR):
        return []
    return sorted(f[:-5] for f in os.listdir(_DIR) if f.endswith(".json") and os.path.isfile(os.path.join(_DIR, f)))


def builtin_path(name):
    """The stored ``config.json`` file of the built-in `name`, or None when there is none.

    Parameters
    ----------
    name : str
        A built-in's name, e.g. ``"llama-3.1-8b"``; a stored config rotary refuses has a path too
        (see :func:`refused_builtins`).
    """
    if not isinstance(name, str) or name not in _stored_names():
        return None
    return os.path.join(_DIR, f"{name}.json")


def _stored(name):
    path = builtin_path(name)
    if path is None:
        raise invalid("name", f"{name!r} is not a built-in config; {names_hint()}")
    return path


def builtin_config(name):
    """The config dict (the model's ``config.json`` fields) of a built-in configuration.

    Parameters
    ----------
    name : str
        One of :func:`builtin_names` (or of :func:`refused_builtins`).

    Raises
    ------
    rotary.Error
        (a ValueError) when there is no such built-in; the message lists them.
    """
    with open(_stored(name), encoding="utf-8") as f:
        return json.load(f)


def builtin_source(name):
    """Where a built-in configuration's values were read.

    Parameters
    ----------
    name : str
        As in :func:`builtin_config`.

    Returns
    -------
    dict
        ``{"model": ..., "source": {"repository", "path", "commit", "note"}}``: the model's name
        and the public file (repository, path in it, commit) the config was copied from.
    """
    _stored(name)
    with open(os.path.join(_SOURCES, f"{name}.json"), encoding="utf-8") as f:
        return json.load(f)


@functools.cache
def _statuses():
    """{name: reason rotary refuses it, or None}: each stored config read for every layer type it
    declares, as :class:`rotary.Rope` reads it (the command line checks the same for ``rotary list``)."""
    from . import _rotary
    from ._config import config_from_dict, rope_layer_types
    from ._rope import Rope

    statuses = {}
    for name in _stored_names():
        config = builtin_config(name)
        try:
            for layer_type in rope_layer_types(config) or [None]:
                Rope(config_from_dict(config, layer_type))
            statuses[name] = None
        except _rotary.Error as e:
            statuses[name] = str(e)
    return statuses


def builtin_names():
    """The names of the bundled configurations rotary reads, e.g. ``"llama-3.1-8b"`` (sorted): what
    ``rotary list`` lists.

    Each builds a :class:`rotary.Rope` (``Rope("gemma-3-12b-it", layer_type=...)`` for a config with
    one RoPE per layer type; :func:`rotary.rope_layer_types` names them). Stored configurations
    rotary refuses are left out; :func:`refused_builtins` gives them with the reason.

    Returns
    -------
    list of str
        Empty when the package was installed without its data.
    """
    return [name for name, refusal in _statuses().items() if refusal is None]


def refused_builtins():
    """The stored configurations rotary refuses to read, with why.

    They are kept beside the others so that the tests keep checking that each is refused by name
    rather than misread; their names still resolve, so reading one raises that reason.

    Returns
    -------
    dict
        ``{name: reason}``, the reason being the error rotary raises for it (e.g.
        ``"use_dynamic_ntk: Qwen-1's remote-code dynamic NTK is not a transformers rope_type ..."``).
    """
    return {name: refusal for name, refusal in _statuses().items() if refusal is not None}


def names_hint():
    """ "built-ins: a, b, ... (rotary.builtin_names())", for the errors of an unknown name."""
    return f"built-ins: {', '.join(builtin_names())} (rotary.builtin_names())"
