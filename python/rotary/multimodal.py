"""Position ids for multimodal prompts, as transformers builds them for Qwen2-VL and its successors
(M-RoPE: temporal, height, width) and for vision towers (2D: row, column)."""

from collections.abc import Mapping

import numpy as np

from . import _rotary
from ._errors import invalid
from ._limits import integer


def _grid(value, name):
    try:
        t, h, w = value
    except (TypeError, ValueError):
        raise invalid(name, f"expected a (t, h, w) grid of patches, got {value!r}") from None
    return tuple(integer(v, f"{name}.{axis}") for v, axis in zip((t, h, w), "thw", strict=True))


def _build(argument, build):
    # The core bounds the ids (2**24 tokens, include/rotary/limits.h) and names their bytes; the
    # lists it hands over take more memory than its arrays did.
    try:
        return build()
    except MemoryError:
        raise invalid(argument, "the position ids need more memory than this machine could allocate") from None


def mrope_positions(segments, spatial_merge_size=2):
    """The (temporal, height, width) position ids of a prompt of text and images or videos.

    Text tokens count up one per token with the same value on all three axes. An image or video
    starting at position ``s`` gives its merged patch ``(t, h, w)`` the ids ``(s + t *
    time_interval, s + h, s + w)``; the text after it resumes at ``s + max(H, W) //
    spatial_merge_size``. This is transformers' ``get_rope_index`` for Qwen2-VL, Qwen2.5-VL and
    Qwen3-VL (for Qwen3-VL pass each video frame as its own segment with t = 1).

    Parameters
    ----------
    segments : sequence
        In prompt order. An ``int``: that many text tokens. A ``(t, h, w)`` tuple: an image or
        video of t x h x w patches before merging (the processor's ``image_grid_thw`` row). A dict
        ``{"grid": (t, h, w), "time_interval": x}``: a video whose frames are ``x`` positions apart
        (Qwen2.5-VL: ``tokens_per_second * second_per_grid_t``; default 1).
    spatial_merge_size : int
        The vision tower's merge window (``vision_config.spatial_merge_size``, 2 for Qwen-VL).

    Returns
    -------
    position_ids : numpy.ndarray of int64, shape (3, num_tokens)
        For :meth:`Rope.rotate` (positions of shape (3, seq)).
    rope_delta : int
        ``max(position_ids) + 1 - num_tokens``: the decode token at cache index ``c`` has position
        ``c + rope_delta`` on every axis.
    """
    packed = []
    for i, segment in enumerate(segments):
        name = f"segments[{i}]"
        if isinstance(segment, (int, np.integer)):
            if segment <= 0:
                raise invalid(name, f"expected a positive number of text tokens, got {segment}")
            packed.append((int(segment), 0, 0, 0, 1.0))
        elif isinstance(segment, Mapping):
            t, h, w = _grid(segment.get("grid"), name + ".grid")
            packed.append((0, t, h, w, float(segment.get("time_interval", 1.0))))
        else:
            packed.append((0, *_grid(segment, name), 1.0))
    merge = integer(spatial_merge_size, "spatial_merge_size")

    def build():
        ids, tokens, delta = _rotary.mrope_positions(packed, merge)
        return np.asarray(ids, dtype=np.int64).reshape(3, tokens), int(delta)

    return _build("segments", build)


def vision_patch_positions(grids, spatial_merge_size=1):
    """The (row, column) ids of a vision tower's patches, images one after another.

    Parameters
    ----------
    grids : sequence of (t, h, w)
        Patches per image or video (every frame repeats its image's ids).
    spatial_merge_size : int
        1: row-major (Pixtral). > 1: window by window of merge x merge patches, row-major inside
        each window (Qwen2-VL's tower, ``vision_config.spatial_merge_size``).

    Returns
    -------
    numpy.ndarray of int64, shape (2, num_patches)
        For :meth:`Rope.rotate` with an axial (2D) RoPE.
    """
    packed = [_grid(g, f"grids[{i}]") for i, g in enumerate(grids)]
    merge = integer(spatial_merge_size, "spatial_merge_size")

    def build():
        ids, tokens = _rotary.vision_patch_positions(packed, merge)
        return np.asarray(ids, dtype=np.int64).reshape(2, tokens)

    return _build("grids", build)
