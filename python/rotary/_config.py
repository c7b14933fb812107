"""RoPE configurations from transformers-style config dicts and config.json files."""

import json
import os
from collections.abc import Mapping

from . import _rotary
from ._errors import invalid


def _json_value(value):
    # NumPy scalars and arrays (and anything else with .tolist()/.item()) become plain JSON.
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _as_json_text(config):
    if hasattr(config, "to_dict") and not isinstance(config, Mapping):
        config = config.to_dict()  # a transformers PretrainedConfig
    if not isinstance(config, Mapping):
        raise invalid("config", f"expected a dict (a model's config.json contents), got {type(config).__name__}")
    try:
        return json.dumps(config, default=_json_value, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise invalid("config", f"cannot be written as JSON: {e}") from None


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
        return _rotary.vision_config_from_json(_as_json_text(config))
    return _rotary.config_from_json(_as_json_text(config), layer_type or "")


def config_from_file(path, layer_type=None, *, vision=False):
    """Reads the RoPE part of a model's ``config.json``.

    Parameters
    ----------
    path : str or os.PathLike
        The file. Errors are prefixed with the path.
    layer_type : str, optional
        As in :func:`config_from_dict`.
    vision : bool
        As in :func:`config_from_dict`.

    Returns
    -------
    RopeConfig
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    if vision:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            return _rotary.vision_config_from_json(text)
        except _rotary.Error as e:
            raise invalid(path, str(e)) from None
    return _rotary.config_from_json_file(path, layer_type or "")


def rope_layer_types(config):
    """The layer types whose RoPE differs in a config (empty when one RoPE serves every layer).

    Parameters
    ----------
    config : Mapping, transformers.PretrainedConfig, str or os.PathLike
        A config dict or object, or the path of a ``config.json``.

    Returns
    -------
    list of str
        For example ``["full_attention", "sliding_attention"]`` for Gemma 3.
    """
    if isinstance(config, (str, os.PathLike)):
        with open(config, encoding="utf-8") as f:
            text = f.read()
    else:
        text = _as_json_text(config)
    return _rotary.rope_layer_types(text)
