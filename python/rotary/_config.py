"""RoPE configurations from transformers-style config dicts and config.json files."""

import json
import math
import os
from collections.abc import Mapping

from . import _rotary
from ._builtins import builtin_path, names_hint
from ._errors import invalid


def _json_value(value):
    # NumPy scalars and arrays (and anything else with .tolist()/.item()) become plain JSON.
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _spell_non_finite(value):
    # JSON has no NaN or infinity, so each non-finite float is passed as the string Python's json
    # module spells it with. Where the core needs a number it names the field and that value
    # ("rope_parameters.rope_theta: expected a finite number, got NaN"); fields it does not read
    # may hold one (Falcon-H1's time_step_limit ends in an infinity).
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {key: _spell_non_finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_spell_non_finite(item) for item in value]
    if not isinstance(value, (str, bytes, int)) and (hasattr(value, "tolist") or hasattr(value, "item")):
        return _spell_non_finite(_json_value(value))
    return value


def _as_json_text(config):
    if hasattr(config, "to_dict") and not isinstance(config, Mapping):
        config = config.to_dict()  # a transformers PretrainedConfig
    if not isinstance(config, Mapping):
        raise invalid("config", f"expected a dict (a model's config.json contents), got {type(config).__name__}")
    try:
        config = _spell_non_finite(config)
        return json.dumps(config, default=_json_value, allow_nan=False)
    except Exception as e:  # noqa: BLE001 - a hostile dict may raise anything: RecursionError when deeply nested, ...
        raise invalid("config", f"cannot be written as JSON: {e}") from None


# The core's size limit for a config file (src/json_read.h); real ones are a few KB.
_MAX_CONFIG_BYTES = 16 << 20


def _prefixed(prefix, error):
    """`error` (a rotary.Error) with `prefix` in front, as the core prefixes a file's errors with its
    path: "PREFIX: ARGUMENT: message"."""
    named = invalid(prefix, str(error))
    named.argument = f"{prefix}: {error.argument}" if error.argument else prefix
    named.code = error.code
    return named


def _too_large(path, what):
    error = invalid(path, f"{what} exceeds the size limit of {_MAX_CONFIG_BYTES >> 20} MiB")
    error.code = "parse_error"
    return error


def _read_config_text(path):
    """The text of the config file `path`. Its size is checked before it is read, and a file whose size
    is not known up front (a pipe, a device) is read no further than the limit."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > _MAX_CONFIG_BYTES:
            raise _too_large(path, f"file of {size} bytes")
        data = f.read(_MAX_CONFIG_BYTES + 1)
    if len(data) > _MAX_CONFIG_BYTES:
        raise _too_large(path, "file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise invalid(path, f"not UTF-8 text: {e}") from None


def _parse_dict(parse, config, *args):
    """`parse(json_text, *args)` of the dict `config`. Errors about the text as a whole (too deep, too
    large) name no field, so they name `config`."""
    try:
        return parse(_as_json_text(config), *args)
    except _rotary.Error as e:
        if e.argument:
            raise
        raise _prefixed("config", e) from None


def _parse_file(parse, path, *args, label=None):
    """`parse(json_text, *args)` of the file `path`, its errors prefixed with `label` (default: the
    path) as the core's own file reader does."""
    text = _read_config_text(path)
    try:
        return parse(text, *args)
    except _rotary.Error as e:
        raise _prefixed(label or path, e) from None


def _locate(config):
    """(file, label) for a config given as a path or a built-in name: an existing path is that file
    (a user's file is never shadowed by a built-in of the same name), any other str must name a
    built-in, whose stored file is read. `label` is what errors call it: the argument as given."""
    path = os.fspath(config)
    if os.path.exists(path):
        if os.path.isdir(path):
            raise IsADirectoryError(f"{path}: a directory; expected a config.json file or a built-in name")
        return path, path
    if not isinstance(config, str):
        raise FileNotFoundError(f"{path}: no such file")  # a path object never names a built-in
    stored = builtin_path(path)
    if stored is None:
        raise FileNotFoundError(f"{path}: no such file, and not a built-in config ({names_hint()})")
    return stored, path


def _parse_any(parse, config):
    """`parse(json_text)` of a config dict or object, or of the ``config.json`` a path or built-in
    name gives."""
    if isinstance(config, (str, os.PathLike)):
        path, label = _locate(config)
        return _parse_file(parse, path, label=label)
    return _parse_dict(parse, config)


def config_from_dict(config, layer_type=None, *, vision=False):
    """Reads the RoPE part of a model configuration given as a dict.

    Parameters
    ----------
    config : Mapping or transformers.PretrainedConfig
        The contents of a model's ``config.json``. Both the older form (top-level ``rope_theta`` and a
        ``rope_scaling`` dict, legacy ``"type"`` key included) and the newer ``rope_parameters``
        form (possibly nested per layer type) are accepted; ``head_dim`` or ``hidden_size /
        num_attention_heads``; GPT-NeoX, GPT-J, Phi-3, Gemma 3, DeepSeek and multimodal
        (``text_config``) field names. A transformers config object is read through ``to_dict()``.
    layer_type : str, optional
        For configs with one RoPE per layer type (Gemma 3, OLMo 3, nested ``rope_parameters``):
        ``"full_attention"`` or ``"sliding_attention"``; see :func:`rope_layer_types`.
    vision : bool
        Read the vision tower's 2D RoPE (``vision_config``: Pixtral, Qwen2-VL, Qwen2.5-VL,
        Qwen3-VL, Qwen3.5) instead of the language model's; rope_type ``"axial"``, two position
        axes (row, column).

    Returns
    -------
    RopeConfig
        The validated configuration; ``rotary_dim`` and ``original_max_position_embeddings`` are
        resolved.

    Raises
    ------
    rotary.Error
        (a ValueError) naming the offending field, e.g. ``rope_scaling.factor: required for
        rope_type 'linear'``.
    """
    if vision:
        return _parse_dict(_rotary.vision_config_from_json, config)
    return _parse_dict(_rotary.config_from_json, config, layer_type or "")


def config_from_file(path, layer_type=None, *, vision=False):
    """Reads the RoPE part of a model's ``config.json``, given by its path or a built-in's name.

    Parameters
    ----------
    path : str or os.PathLike
        The file, or (a str only) the name of a bundled configuration such as ``"llama-3.1-8b"``
        (:func:`builtin_names`; ``rotary list`` on the command line). An existing path is always
        read as a file, even where a built-in has the same name; any other str must be a
        built-in's name. Errors are prefixed with `path` as given.
    layer_type : str, optional
        As in :func:`config_from_dict`.
    vision : bool
        As in :func:`config_from_dict`.

    Returns
    -------
    RopeConfig

    Raises
    ------
    FileNotFoundError
        When `path` is neither an existing file nor a built-in's name; the message lists the
        built-ins.
    rotary.Error
        (a ValueError) naming `path` and the field, e.g. for a stored config rotary refuses
        (:func:`refused_builtins`).
    """
    file, label = _locate(path)
    if vision:
        return _parse_file(_rotary.vision_config_from_json, file, label=label)
    if file == label:
        return _rotary.config_from_json_file(file, layer_type or "")
    return _parse_file(_rotary.config_from_json, file, layer_type or "", label=label)


def rope_layer_types(config):
    """The layer types whose RoPE differs in a config (empty when one RoPE serves every layer).

    Parameters
    ----------
    config : Mapping, transformers.PretrainedConfig, str or os.PathLike
        A config dict or object, the path of a ``config.json``, or a built-in's name (as in
        :func:`config_from_file`).

    Returns
    -------
    list of str
        For example ``["full_attention", "sliding_attention"]`` for Gemma 3.
    """
    return _parse_any(_rotary.rope_layer_types, config)


def layer_ropes(config):
    """Which layers of a model rotate, and by which RoPE, as transformers' model class decides it
    (Llama 4's and SmolLM3's NoPE layers, Cohere 2's global layers, Granite-SWA's per-layer bases,
    a per-layer-type RoPE such as Gemma 3's; see the README's "Which layers rotate").

    Parameters
    ----------
    config : Mapping, transformers.PretrainedConfig, str or os.PathLike
        A config dict or object, the path of a ``config.json``, or a built-in's name (as in
        :func:`config_from_file`).

    Returns
    -------
    list of dict
        One per layer (``num_hidden_layers``), with the keys ``layer``; ``layer_type`` (``""`` where
        the config states none and the rule needs none); ``rope``: the layer's
        :class:`RopeConfig`, or None for a layer that applies no RoPE; and ``reason``: what in the
        config decides it.

    Raises
    ------
    rotary.Error
        Naming the field when the config does not say what the model class needs (``layer_types``),
        or for a family whose per-layer rule rotary does not model.
    """
    rows = _parse_any(_rotary.layer_ropes, config)
    return [{"layer": i, "layer_type": t, "rope": rope, "reason": why} for i, (t, rope, why) in enumerate(rows)]
