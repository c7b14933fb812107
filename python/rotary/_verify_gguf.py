""":func:`rotary.verify_gguf`: does a llama.cpp GGUF file rotate as the original checkpoint does?

The rotation llama.cpp applies to the file (:func:`rotary.gguf.rope_config`) is compared with the
original ``config.json``, pair by pair, by the C++ core (``rotary/gguf_verify.h``): the pairing in
the checkpoint's channel order, the sizes, the base, the scaling, each pair's frequency, the cos/sin
scale and YaRN's details, each difference in words with its size, its consequence and the fix.
"""

import json
import os
from dataclasses import dataclass, field

import numpy as np

from . import _rotary
from ._config import config_from_dict, config_from_file
from ._limits import integer
from ._verify_report import Finding


@dataclass
class GgufVerifyReport:
    """What :func:`rotary.verify_gguf` found.

    Attributes
    ----------
    gguf : str
        The file compared (its path, or ``"<metadata>"`` for metadata passed directly).
    architecture : str
        The file's ``general.architecture``.
    config : str
        The configuration compared with (its path, built-in name or ``repr``).
    context : int
        The context the frequencies were compared at, and at which angle errors are stated.
    findings : list of rotary.verify report Finding
        Mismatches first, then warnings, then notes (llama.cpp's assumptions, topic ``"gguf"``).
    theta_gguf, theta_config : numpy.ndarray of float64
        Each side's theta per rotated pair (rad/position) at ``context``.
    attention_gguf, attention_config : float
        Each side's cos/sin scale.
    rope : rotary.gguf.GgufRope
        The rotation llama.cpp applies, as built for ``context``.
    """

    gguf: str
    architecture: str
    config: str
    context: int
    findings: list = field(default_factory=list)
    theta_gguf: np.ndarray | None = None
    theta_config: np.ndarray | None = None
    attention_gguf: float = 1.0
    attention_config: float = 1.0
    rope: object = None

    @property
    def match(self):
        """True when no finding is a mismatch."""
        return not any(f.severity == "mismatch" for f in self.findings)

    def mismatches(self):
        """The messages of the mismatch findings."""
        return [f.message for f in self.findings if f.severity == "mismatch"]

    def to_dict(self):
        """The report's facts as JSON-ready values."""
        return {
            "gguf": self.gguf,
            "architecture": self.architecture,
            "config": self.config,
            "context": self.context,
            "match": self.match,
            "rope_mode": self.rope.rope_mode,
            "qk_rows_permuted": self.rope.qk_rows_permuted,
            "theta_gguf": [float(t) for t in self.theta_gguf],
            "theta_config": [float(t) for t in self.theta_config],
            "attention_gguf": float(self.attention_gguf),
            "attention_config": float(self.attention_config),
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_json(self, **kwargs):
        """``json.dumps(self.to_dict(), **kwargs)``."""
        return json.dumps(self.to_dict(), **kwargs)

    def __str__(self):
        r = self.rope
        verdict = "MATCH" if self.match else f"MISMATCH ({len(self.mismatches())})"
        permuted = ", Q/K rows reordered by the converter" if r.qk_rows_permuted else ""
        lines = [
            f"rotary verify: {self.gguf} against {self.config}",
            f"  llama.cpp         architecture '{self.architecture}', rope type {r.rope_mode}{permuted}",
            f"  compared at       context {self.context}, {len(self.theta_config)} pairs",
            f"  cos/sin scale     {self.attention_gguf:.7g} in llama.cpp, {self.attention_config:.7g} in the config",
            "",
            f"Verdict: {verdict}",
        ]
        marks = {"mismatch": "x", "warning": "!", "note": "-"}
        lines += [f"  {marks[f.severity]} [{f.topic}] {f.message}" for f in self.findings]
        return "\n".join(lines)


def verify_gguf(path, config, *, context_length=None, layer_type=None) -> GgufVerifyReport:
    """Compares the rotation llama.cpp applies to a GGUF file with the original ``config.json``.

    Parameters
    ----------
    path : str, os.PathLike or rotary.gguf.GgufMetadata
        The GGUF file (read with :func:`rotary.gguf.read_metadata`; needs ``rotary[gguf]``), or its
        metadata already read.
    config : RopeConfig, str, os.PathLike or Mapping
        The original model's configuration, as :class:`rotary.Rope` accepts it: a
        :class:`rotary.RopeConfig`, the path of its ``config.json``, a built-in name such as
        ``"llama-3.1-8b"``, or a dict. Its layout is the checkpoint's pairing.
    context_length : int, optional
        The context llama.cpp runs with and the comparison is made at (LongRoPE's factor set is
        chosen from it, angle errors are stated at it). Default: the config's
        ``max_position_embeddings``, the trained context, else the file's ``context_length``.
    layer_type : str, optional
        For a config with one RoPE per layer type (a path or dict): the layer type whose RoPE the
        file's rotation is compared with, as in :func:`rotary.config_from_file`.

    Returns
    -------
    GgufVerifyReport
        ``.match``, ``.findings``; ``str(report)`` is the readable report, ``report.to_dict()`` /
        ``report.to_json()`` the same facts for machines.

    Raises
    ------
    rotary.Error
        (a ValueError) naming the argument or key: a file rotary cannot read or express
        (:func:`rotary.gguf.rope_config`), a config it refuses, a bad ``context_length``.
    """
    from . import gguf  # the gguf package is optional: imported when asked for

    metadata = path if isinstance(path, gguf.GgufMetadata) else gguf.read_metadata(path)
    rope_config, label = _config_of(config, layer_type)
    context = 0 if context_length is None else integer(context_length, "context_length", 1)
    rope_context = context or rope_config.max_position_embeddings or None
    rope = gguf.rope_config(metadata, rope_context)
    _, findings, theta_g, theta_c, attn_g, attn_c, used = _rotary.gguf_compare(
        rope.config,
        rope.rope_mode,
        rope.qk_rows_permuted,
        list(rope.notes),
        rope_config,
        context,
        metadata.architecture,
    )
    return GgufVerifyReport(
        gguf=os.fspath(path) if isinstance(path, (str, os.PathLike)) else "<metadata>",
        architecture=metadata.architecture,
        config=label,
        context=used,
        findings=[Finding(*f) for f in findings],
        theta_gguf=np.asarray(theta_g, dtype=np.float64),
        theta_config=np.asarray(theta_c, dtype=np.float64),
        attention_gguf=attn_g,
        attention_config=attn_c,
        rope=rope,
    )


def _config_of(config, layer_type):
    """The config as a RopeConfig, with a label for the report."""
    if isinstance(config, _rotary.RopeConfig):
        return config, "the given RopeConfig"
    if isinstance(config, (str, os.PathLike)):
        label = os.fspath(config) + (f" ({layer_type})" if layer_type else "")
        return config_from_file(config, layer_type), label
    return config_from_dict(config, layer_type), "the given config"
