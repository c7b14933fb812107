"""rotary: rotary position embeddings (RoPE) for every published variant, numerically faithful to
Hugging Face transformers, rotating NumPy arrays and PyTorch tensors in place without copying.

Example::

    import torch, rotary
    rope = rotary.Rope("Llama-3.1-8B/config.json")  # or a built-in name: rotary.Rope("llama-3.1-8b")
    q, k = torch.randn(2, 32, 16, 128), torch.randn(2, 8, 16, 128)  # (batch, heads, seq, head_dim)
    positions = torch.arange(16).expand(2, 16)                       # (batch, seq)
    rope.rotate(q, positions, k=k, layout="bhsd")                    # q and k rotated in place

``rotary.torch.apply_rotary(q, k, positions, rope, layout="bhsd")`` rotates out of place through
the ``torch.ops.rotary.rotate`` operator (``torch.compile`` and ``torch.export`` trace it), and its
backward pass applies the transposed rotation. ``rotary.patch(model)`` gives one transformers model
rotary's RoPE; ``rotary.unpatch(model)`` takes it back.

``rotary.verify(fn, expected=...)`` probes another RoPE implementation from outside and reports what
it computes and what is wrong with it; ``rotary.verify_gguf(path, config)`` compares the rotation
llama.cpp applies to a GGUF file with the original ``config.json``. ``rotary.compat.meta`` and
``rotary.compat.hf`` are drop-in replacements for Meta's and transformers' RoPE functions.
``rotary.families()`` tells which RoPE families of transformers rotary reads as transformers does.
"""

from ._builtins import builtin_config, builtin_names, builtin_path, builtin_source, refused_builtins
from ._config import config_from_dict, config_from_file, layer_ropes, rope_layer_types
from ._families import families
from ._patch import patch, patched, unpatch
from ._qk_norm import RmsNorm, rms_norm_rotate, rms_norm_rotate_append
from ._rope import Rope
from ._rotary import Error, RopeConfig
from ._rotary import __version__ as __version__  # project(rotary VERSION ...) in CMakeLists.txt
from ._verify_gguf import GgufVerifyReport, verify_gguf
from ._verify_report import VerifyReport
from .adapters import adapt_hf, adapt_meta
from .kv_cache import BlockTable, KvCache, attention
from .multimodal import mrope_positions, vision_patch_positions
from .verify import verify

__all__ = [
    "BlockTable",
    "KvCache",
    "attention",
    "Error",
    "GgufVerifyReport",
    "Rope",
    "RmsNorm",
    "RopeConfig",
    "VerifyReport",
    "adapt_hf",
    "adapt_meta",
    "builtin_config",
    "builtin_names",
    "builtin_path",
    "builtin_source",
    "config_from_dict",
    "config_from_file",
    "families",
    "mrope_positions",
    "patch",
    "patched",
    "refused_builtins",
    "rms_norm_rotate",
    "rms_norm_rotate_append",
    "rope_layer_types",
    "unpatch",
    "layer_ropes",
    "vision_patch_positions",
    "verify",
    "verify_gguf",
]
