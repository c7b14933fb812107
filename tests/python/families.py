"""Every RoPE family of the installed transformers, found in its source and checked against rotary.

The families are not listed by hand. `discover` reads `transformers/models/*/modeling_*.py` and keeps
every file that rotates by position: it defines a `*RotaryEmbedding` class, an `apply_rotary*`
function or `rotate_half`, and calls one of them (four files define `apply_rotary_pos_emb` only to
register it as a kernel and never rotate; they are listed as excluded, with that reason). Each
rotary module class of such a file (a text model, a vision or audio tower) is one family.

Each family is checked on its cases: transformers' own default config for the family (its config
class, `AutoConfig.for_model`), each RoPE type its module accepts (the default config with
`rope_parameters` set to linear / dynamic / yarn / longrope / llama3, where the module builds its
frequencies through `ROPE_INIT_FUNCTIONS`; dynamic and longrope only where its forward is wrapped
in `dynamic_rope_update`, which recomputes them per call), each layer type with its own RoPE, and
the real configs of tests/data/configs whose model_type is the family's. rotary reads the config as
a user would: `rotary.config_from_dict(config.to_dict())` (the stored configs: the config.json
dict itself), with `vision=True` for a tower held as the config's vision_config.

transformers is probed, not re-implemented: its rotary module computes cos/sin for a call and its
own apply function rotates a batch of one-hot vectors, one head per channel. Rotating a one-hot
vector multiplies cos and sin by exactly 1 and 0, so the output is transformers' rotation matrix
for each token, exact: which channels it pairs, which pass through, and the float32 cos/sin it
multiplies them by, whatever shape its tables and apply function have. rotary's matrix is taken
the same way, and the two are compared:

- theta: rotary's inverse frequencies (per call, `frequencies_for`) against the module's
  `inv_freq` buffer after the same call: within 1 float32 ulp (YaRN: 2, as it rounds twice after
  torch's `pow`, see test_conformance.py); the bit-equal share is recorded. A theta further off is
  computed again by transformers' own code with torch's pow correctly rounded
  (`correctly_rounded_pow`): when it then agrees, the difference was torch's pow, which the
  reciprocal after it can stretch to 2 ulps; when it does not, it is a mismatch (and
  `true_scalar_division` tells whether torch's `number / tensor` is the rest of it).
- attention factor: within 1e-6.
- the rotation matrices, rotary given transformers' theta and attention factor: the same channel
  pairs and pass-through channels, and every cos/sin entry within 2.5e-7 (float32 cos/sin of the
  same float32 angle differ by an ulp: torch's are not correctly rounded, rotary's are).
- rotated q/k in float32 (random values, transformers' apply against rotary): max |error| within
  1e-6 of max |transformers|.
- rotated q/k in bfloat16 (rotary only): within one bfloat16 ulp of a float64 oracle that applies
  transformers' own float32 cos/sin exactly; where an output cancels far below its inputs, half
  an ulp plus the float32 evaluation error (2^-21 of the inputs' scale).

Positions: two calls of a batch of 2 x 16 tokens; the first stays inside the trained context
(positions 0.. and up to the last position before max_position_embeddings, or before the original
context of a LongRoPE config), the second straddles max_position_embeddings and reaches twice it.
M-RoPE modules get a different component per axis; 2D towers (a config whose RoPE defaults to
"axial") get (row, column) patch grids. An apply function that returns its output channels in a
fixed other order (DeepSeek-V3's interleave variant) is compared after undoing that order, which q
and k share and scores do not see.

Modules that their model calls otherwise have an adapter (ADAPTERS) that calls them as the model does:
RoFormer's table, CLVP's and the audio conformers' tables for a sequence's length, DINOv3's pixel grid,
V-JEPA 2's attention (it has no rotary module), Gemma 4's and SAM 3's (x, y) patch ids. Where
transformers' default config cannot run its own module, the adapter fixes the default config with
values transformers supplies (its `fixed_default`, recorded in the family's notes: Cohere Compass's
default_theta, the GLM modules' own mrope_section, the conformers' position_embeddings_type "rotary").
A module that rotates by something other than integer positions times frequencies (DINOv3's patch
centres, LightGlue's trained projection, SAM 3's scaled global positions) is a mismatch saying so.

Each case ends in one state: `match`, `refused` (rotary raised rotary.Error: the message is kept),
`mismatch` (rotary loaded the config and rotated differently: the diagnosis says how, found by
comparing the two matrices' structure and values, and by trying rotary's other channel layout and
its inverse rotation), or
`unchecked` (the module could not be driven: the reason is kept). A family takes the worst state of
its cases, in the order unchecked, mismatch, refused, match.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import glob
import importlib
import inspect
import math
import os
import re
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
import transformers
from huggingface_hub.errors import StrictDataclassError
from transformers.models.auto.configuration_auto import (
    CONFIG_MAPPING,
    CONFIG_MAPPING_NAMES,
    model_type_to_module_name,
)

import rotary
from compare import storage_ulp, ulp_distance
from hf_reference import SUBSTITUTE_FAMILY, UNSUPPORTED, hf_config_kwargs, load_records

STATES = ("match", "refused", "mismatch", "unchecked")

# What transformers' config classes, modules and apply functions raise for a config or an input they
# do not handle: caught where the sweep tries them, and reported (never a crash of the sweep).
# (Config classes validate their fields as strict dataclasses: StrictDataclassError.)
TRANSFORMERS_ERRORS = (
    ArithmeticError,
    AssertionError,
    AttributeError,
    ImportError,
    LookupError,
    NotImplementedError,
    RuntimeError,
    StrictDataclassError,
    TypeError,
    ValueError,
)
_SEVERITY = {"match": 0, "refused": 1, "mismatch": 2, "unchecked": 3}

MODELS_DIR = os.path.join(os.path.dirname(transformers.__file__), "models")

# What makes a modeling file a RoPE family: a rotary module class (RotaryEmbedding, and the audio
# encoders' RotaryPositionalEmbedding), an apply function or rotate_half.
_DEFINES = re.compile(r"^\s*(?:class \w*Rotary\w*Embedding\b|def apply_rotary\w*\(|def rotate_half\()", re.MULTILINE)
# A call of an apply function (the definition and `use_kernelized_func(apply_rotary_pos_emb)`, which only
# registers it, do not count; the audio encoders' attention calls its own `_apply_rotary_embedding`).
_APPLY_CALLS = re.compile(r"(?<!def )\b_?apply_rotary\w*\(")
_ROTATE_HALF_CALLS = re.compile(r"(?<!def )\brotate_half\(")
# The module classes that compute a family's cos/sin; the fallback names RoFormer's and LightGlue's.
_MODULE_CLASS = re.compile(r"^class (\w*(?:Rotary|Rope)\w*(?:Embedding|Encoding)\w*)\(", re.MULTILINE)
_FALLBACK_CLASS = re.compile(r"^class (\w*(?:Sinusoidal|Positional)\w*(?:Embedding|Encoder|Encoding))\(", re.MULTILINE)


def _rotates(source):
    """Whether the file rotates: it has a rotary module class, or calls an apply function (or, with
    none defined, rotate_half)."""
    if _MODULE_CLASS.search(source) or _APPLY_CALLS.search(source):
        return True
    return "def apply_rotary" not in source and bool(_ROTATE_HALF_CALLS.search(source))


# The parameters of the scaled RoPE types (the default config's rope_theta and partial factor are
# kept). They are the published ones where a model publishes them, relative to the family's own
# max_position_embeddings: Llama 3.1's factor 8, low 1, high 4 and its 16x context extension;
# Qwen2.5's YaRN factor 4. LongRoPE's factors are a ramp (short: 1; long: 1 + j / 4), as no
# family's default config has a LongRoPE block of its own size.
SCALED_TYPES = ("linear", "dynamic", "yarn", "longrope", "llama3")
_PER_CALL_TYPES = ("dynamic", "longrope")


def _scaled_parameters(rope_type, max_pos, pairs):
    if rope_type in ("linear", "dynamic"):
        return {"factor": 2.0}
    if rope_type == "yarn":
        return {"factor": 4.0, "original_max_position_embeddings": max_pos}
    if rope_type == "llama3":
        return {
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": max(max_pos // 16, 1),
        }
    return {
        "short_factor": [1.0] * pairs,
        "long_factor": [1.0 + j / 4 for j in range(pairs)],
        "original_max_position_embeddings": max(max_pos // 4, 1),
    }


# Keys a family's config class requires for a scaled type: PhimoeConfig wants both cos/sin scales of
# its LongRoPE (two distinct test values, so that the switch between them shows).
_FAMILY_SCALING = {("phimoe", "longrope"): {"short_mscale": 1.25, "long_mscale": 1.5}}

_SCALING_KEYS = {
    "rope_type",
    "type",
    "factor",
    "original_max_position_embeddings",
    "attention_factor",
    "beta_fast",
    "beta_slow",
    "mscale",
    "mscale_all_dim",
    "truncate",
    "short_factor",
    "long_factor",
    "low_freq_factor",
    "high_freq_factor",
}

BATCH, SEQ = 2, 16
F32_MATRIX_TOL = 2.5e-7
F32_QK_TOL = 1e-6
FACTOR_TOL = 1e-6


# -------------------------------------------------------------------------------------------------
# enumeration


@dataclass(eq=False)
class Family:
    """One rotary module class of one modeling file."""

    name: str  # the folder, or folder.role when a folder has several (qwen2_vl.vision)
    folder: str
    modeling: object = field(repr=False)
    cls: type | None  # None where no module class computes the cos/sin (the reason is in `note`)
    model_types: list
    tower: str = "text"  # "vision" for a vision encoder's module (by its class or config class name)
    vision: bool = False  # a 2D RoPE: its positions are (row, column) patch grids
    note: str = ""

    @property
    def kind(self):
        return "vision" if self.vision or self.tower == "vision" else "text"


def _model_types_by_folder():
    folders = {}
    for model_type in CONFIG_MAPPING_NAMES:
        folders.setdefault(model_type_to_module_name(model_type), []).append(model_type)
    return folders


def _roles(class_names):
    """The distinguishing part of each class name: Qwen2VL + Vision + RotaryEmbedding -> vision."""
    stems = [re.sub(r"(Rotary|Rope)\w*$", "", n) or n for n in class_names]
    prefix = os.path.commonprefix(stems) if len(stems) > 1 else stems[0]
    return [s[len(prefix) :].lower().strip("_") for s in stems]


def _family_names(folder, class_names):
    if len(class_names) == 1:
        return [folder]
    roles = _roles(class_names)
    plain = [r for r in roles if r in ("", "text")]
    return [folder if r in ("", "text") and len(plain) == 1 else f"{folder}.{r or 'main'}" for r in roles]


@functools.cache
def discover():
    """(families, excluded): every RoPE family of the installed transformers, in folder order, and
    the files that match the definitions but never rotate ({folder: reason})."""
    folders = _model_types_by_folder()
    families, excluded = [], {}
    for path in sorted(glob.glob(os.path.join(MODELS_DIR, "*", "modeling_*.py"))):
        with open(path, encoding="utf-8") as f:
            source = f.read()
        if not _DEFINES.search(source):
            continue
        folder = os.path.basename(os.path.dirname(path))
        module_name = os.path.basename(path)[:-3]
        if not _rotates(source):
            excluded[folder] = (
                "defines "
                + ", ".join(sorted(set(re.findall(r"def (apply_rotary\w*|rotate_half)\(", source))))
                + " but never calls them (apply_rotary_pos_emb is only registered with "
                "use_kernelized_func): no RoPE"
            )
            continue
        classes = _MODULE_CLASS.findall(source)
        modeling = importlib.import_module(f"transformers.models.{folder}.{module_name}")
        model_types = folders.get(folder, [])
        # VJEPA2 rotates inside its attention module: its adapter names that class.
        classes = classes or _FALLBACK_CLASS.findall(source) or [getattr(ADAPTERS.get(folder), "module_class", None)]
        if not classes[0]:
            families.append(
                Family(
                    folder,
                    folder,
                    modeling,
                    None,
                    model_types,
                    note="no module class computes its cos/sin: the rotation is computed inside the attention module",
                )
            )
            continue
        for name, class_name in zip(_family_names(folder, classes), classes, strict=True):
            cls = getattr(modeling, class_name)
            config_class = _config_class(cls)
            # A vision tower: XVisionRotaryEmbedding (not Granite4VisionTextRotaryEmbedding), or a
            # module built from a vision config. A 2D one: its config's RoPE defaults to "axial".
            tower = (
                "vision"
                if re.search(r"(Vision|ViT)(Rotary|Rope)", class_name)
                or config_class is not None
                and re.search(r"Vision(Encoder|Model)?Config$", config_class.__name__)
                else "text"
            )
            # (or one whose adapter derives its positions from a patch grid: DINOv3's patch centres)
            vision = (
                config_class is not None
                and getattr(config_class, "default_rope_type", "") == "axial"
                or getattr(ADAPTERS.get(name), "patch_grid", False)
            )
            families.append(Family(name, folder, modeling, cls, model_types, tower=tower, vision=vision))
    return families, excluded


def family_names():
    return [f.name for f in discover()[0]]


def family(name):
    return next(f for f in discover()[0] if f.name == name)


# -------------------------------------------------------------------------------------------------
# configs: where the module's config sits in the family's config classes


@functools.cache
def _default_config(model_type):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return transformers.AutoConfig.for_model(model_type)


def _walk(config, path=()):
    yield path, config
    for name in getattr(config, "sub_configs", None) or {}:
        sub = getattr(config, name, None)
        if sub is not None and hasattr(sub, "to_dict"):
            yield from _walk(sub, path + (name,))


def _get(config, path):
    for name in path:
        config = getattr(config, name)
    return config


def _config_class(cls):
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    annotation = params[0].annotation if params else inspect.Parameter.empty
    return annotation if isinstance(annotation, type) and hasattr(annotation, "model_type") else None


def _main_model_type(fam):
    for model_type in fam.model_types:
        if model_type.replace("-", "_") == fam.folder:
            return model_type
    return fam.model_types[0] if fam.model_types else None


def _builds(fam, config):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adapter_for(fam).build(fam, config)
        return True
    except TRANSFORMERS_ERRORS:
        return False


def _ranked_paths(fam, wanted):
    """(model_type, path) of every registered default config holding a `wanted` config, best first:
    a path rotary reads (the config itself or its text_config; vision towers: its vision_config),
    then the folder's own model type (the config.json users hold), then the shallowest."""
    main = _main_model_type(fam)
    readable = (("vision_config",), ()) if fam.kind == "vision" else ((), ("text_config",))
    found = []
    for model_type in fam.model_types:
        try:
            top = _default_config(model_type)
        except TRANSFORMERS_ERRORS:
            continue
        for path, sub in _walk(top):
            if wanted is None and path == () and model_type == main or wanted is not None and isinstance(sub, wanted):
                found.append((path not in readable, model_type != main, len(path), model_type, path))
    return [(model_type, path) for *_, model_type, path in sorted(found)]


@functools.cache
def module_config_path(fam):
    """(model_type, path, config class): where the config that builds the module sits.

    The class is the one `__init__` is annotated with, unless no config of that class builds the
    module: some are annotated with the composite config but built with a sub-config
    (Qwen2VLRotaryEmbedding(config: Qwen2VLConfig) receives config.text_config; Qwen2.5-Omni's
    receives thinker_config.text_config). Then the class is the first sub-config, of any of the
    family's default configs, that builds it."""
    wanted = _config_class(fam.cls)
    ranked = _ranked_paths(fam, wanted)
    for model_type, path in ranked:
        if _builds(fam, _get(_default_config(model_type), path)):
            return model_type, path, wanted
    for model_type in fam.model_types:
        try:
            top = _default_config(model_type)
        except TRANSFORMERS_ERRORS:
            continue
        kind = fam.kind
        for path, sub in sorted(_walk(top), key=lambda item: (not any(kind in p for p in item[0]), len(item[0]))):
            if path and _builds(fam, sub):
                for best_type, best_path in _ranked_paths(fam, type(sub)):
                    if _builds(fam, _get(_default_config(best_type), best_path)):
                        return best_type, best_path, type(sub)
    return (*ranked[0], wanted) if ranked else (None, None, wanted)


# -------------------------------------------------------------------------------------------------
# cases


@dataclass
class Case:
    label: str
    top: object  # the config users hold (transformers object), or None for a stored dict
    path: tuple  # where the module's config sits in `top`
    rotary_config: dict  # what rotary reads
    layer_type: str | None = None
    variant: str | None = None  # which of the model's calls of the module an adapter makes (SAM3's layer kinds)

    @property
    def sub(self):
        return _get(self.top, self.path)

    @property
    def rotary_vision(self):
        """rotary reads a vision tower with vision=True from the config that holds it as
        vision_config; a standalone tower config (Pixtral's own, MLCD's) as it is."""
        return self.path[-1:] == ("vision_config",)

    @property
    def rotary_input(self):
        """The dict rotary reads: the whole config, whose text_config or vision_config rotary finds
        itself, or, for a module built from another part (Evolla's protein_encoder_config), that
        part, as a user of that encoder would pass it, named by the model's model_type where it has
        none of its own (as rotary names a vision_config)."""
        if not self.path or self.path[-1] in ("text_config", "vision_config"):
            return self.rotary_config
        part = self.rotary_config
        for key in self.path:
            part = part.get(key) if isinstance(part, dict) else None
        if not isinstance(part, dict):
            return self.rotary_config
        return {**part, "model_type": part.get("model_type") or self.rotary_config.get("model_type", "")}


@dataclass
class Result:
    state: str
    detail: str = ""
    stats: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)  # what a match needed saying (kept once per family)


def _rope_parameters(sub, layer_type):
    params = getattr(sub, "rope_parameters", None) or {}
    if layer_type is not None and isinstance(params.get(layer_type), dict):
        return params[layer_type]
    return params


def _layer_types(fam, sub):
    """The layer types the module keeps frequencies for (`{layer_type}_inv_freq`), or [None]."""
    if "layer_type" not in inspect.signature(fam.cls.forward).parameters:
        return [None]
    candidates = list(
        dict.fromkeys(
            list(getattr(sub, "layer_types", None) or []) + list((getattr(sub, "rope_parameters", None) or {}).keys())
        )
    )
    try:
        module = fam.cls(sub)
    except TRANSFORMERS_ERRORS:
        return [None]
    found = [t for t in candidates if isinstance(t, str) and hasattr(module, f"{t}_inv_freq")]
    return found or [None]


def _class_source(cls):
    try:
        return inspect.getsource(cls)
    except (OSError, TypeError):
        return ""


def accepted_scaled_types(fam):
    """The scaled RoPE types the module builds: through ROPE_INIT_FUNCTIONS; the per-call ones also
    need its forward wrapped in dynamic_rope_update."""
    if fam.kind == "vision" or fam.cls is None:
        return ()
    source = _class_source(fam.cls)
    if "ROPE_INIT_FUNCTIONS" not in source:
        return ()
    per_call = "dynamic_rope_update" in source
    return tuple(t for t in SCALED_TYPES if per_call or t not in _PER_CALL_TYPES)


def _with_rope_type(top, path, rope_type):
    """A deep copy of `top` whose module config has `rope_type` (in place of its flat rope
    parameters, or of its full_attention entry), standardized and validated by transformers."""
    top = copy.deepcopy(top)
    sub = _get(top, path)
    params = copy.deepcopy(getattr(sub, "rope_parameters", None) or {})
    nested = sub.nested_rope_parameter_keys(params) if hasattr(sub, "nested_rope_parameter_keys") else []
    target = params.get("full_attention") if nested else params
    if not isinstance(target, dict):
        raise TypeError("no rope_parameters dict to scale")
    head_dim = getattr(sub, "head_dim", None) or sub.hidden_size // sub.num_attention_heads
    pairs = int(head_dim * target.get("partial_rotary_factor", 1.0)) // 2
    # The scaling keys are replaced; the rest (rope_theta, partial_rotary_factor, mrope_section, ...) kept.
    kept = {k: v for k, v in target.items() if k not in _SCALING_KEYS}
    new = {
        **kept,
        "rope_type": rope_type,
        **_scaled_parameters(rope_type, sub.max_position_embeddings, pairs),
        **_FAMILY_SCALING.get((sub.model_type, rope_type), {}),
    }
    if nested:
        params["full_attention"] = new
    else:
        params = new
    sub.rope_parameters = params
    sub.standardize_rope_params()
    sub.validate_rope()
    return top


def _stored_cases(fam):
    """The real configs of tests/data/configs for this family: (label, transformers top config,
    the stored dict)."""
    cases = []
    for file_name, record in load_records():
        config = record["config"]
        top_type = SUBSTITUTE_FAMILY.get(config["model_type"], config["model_type"])
        if top_type in UNSUPPORTED:
            continue
        text_type = config.get("text_config", {}).get("model_type")
        vision_type = config.get("vision_config", {}).get("model_type")
        mine = set(fam.model_types)
        if not ({top_type, vision_type} & mine if fam.kind == "vision" else {top_type, text_type} & mine):
            continue
        fields = {k: v for k, v in config.items() if k != "model_type"}
        if "text_config" in config:
            fields["text_config"] = dict(hf_config_kwargs(record), model_type=text_type)
        else:
            fields = hf_config_kwargs(record)
        cases.append((file_name[:-5], top_type, fields, config))
    return cases


def _runs(fam, case):
    """None when transformers' own module builds and runs for the case, else why not."""
    try:
        hf = adapter_for(fam)(fam, case)
        hf.call(hf.grids()[0] if fam.vision else _positions(case, case.sub)[0][1])
    except Unchecked as e:
        return str(e)
    except TRANSFORMERS_ERRORS as e:
        return f"{type(e).__name__}: {_first_line(e)}"
    return None


def build_cases(fam):
    """(cases, notes): the family's cases, and what could not be made one (a scaled type or a
    stored config that transformers itself rejects or cannot run with this module)."""
    notes = []
    model_type, path, wanted = module_config_path(fam)
    if model_type is None:
        raise Unchecked(
            f"no registered config class builds {fam.cls.__name__}'s config "
            f"({_config_class(fam.cls)}); model types {fam.model_types}"
        )
    default, fixed = adapter_for(fam).fixed_default(fam, _default_config(model_type), path)
    if fixed:
        notes.append(f"default: {fixed}")
    tops = [("default", default, default.to_dict(), path)]
    for rope_type in accepted_scaled_types(fam):
        try:
            scaled = _with_rope_type(default, path, rope_type)
        except TRANSFORMERS_ERRORS as e:
            notes.append(f"{rope_type}: transformers' config rejects it ({type(e).__name__}: {_first_line(e)})")
            continue
        tops.append((rope_type, scaled, scaled.to_dict(), path))
    for label, top_type, fields, stored in _stored_cases(fam):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                top = CONFIG_MAPPING[top_type](**copy.deepcopy(fields))
        except TRANSFORMERS_ERRORS as e:
            notes.append(f"{label}: transformers rejects the stored config ({type(e).__name__}: {_first_line(e)})")
            continue
        sub_path = next(
            (
                p
                for p, sub in _walk(top)
                if wanted is None and p == () or wanted is not None and isinstance(sub, wanted)
            ),
            None,
        )
        if sub_path is None:
            notes.append(f"{label}: no {wanted.__name__} inside {type(top).__name__}")
            continue
        tops.append((label, top, stored, sub_path))
    cases = []
    for label, top, rotary_config, sub_path in tops:
        sub = _get(top, sub_path)
        for layer_type, variant in [(t, v) for t in _layer_types(fam, sub) for v in adapter_for(fam).variants(sub)]:
            suffix = "".join(f" [{x}]" for x in (layer_type, variant) if x)
            case = Case(label + suffix, top, sub_path, rotary_config, layer_type, variant)
            # A scaled type the module cannot run is transformers' limit, not a case (Mixtral's
            # default head_dim is None, which its dynamic-NTK update multiplies).
            why = _runs(fam, case) if label in SCALED_TYPES else None
            if why is None:
                cases.append(case)
            else:
                notes.append(f"{case.label}: transformers' module cannot run it ({why})")
    return cases, notes


class Unchecked(Exception):
    """The harness cannot drive this family's module; the message says why."""


def _first_line(e):
    text = str(e).strip().splitlines()
    line = text[0] if text else type(e).__name__
    return re.sub(r" at 0x[0-9a-f]+", "", line)[:300]


# -------------------------------------------------------------------------------------------------
# transformers' side: the module's cos/sin for a call, its apply function, its rotation matrices


def _positions(case, sub):
    """Two calls (each BATCH x SEQ positions, int64): inside the trained context, and across it."""
    max_pos = int(getattr(sub, "max_position_embeddings", None) or 4096)
    params = _rope_parameters(sub, case.layer_type)
    inside = min(max_pos, int(params.get("original_max_position_embeddings") or max_pos))
    ar = np.arange(SEQ)
    first = np.stack([ar, max(inside - SEQ, SEQ) + ar])
    second = np.stack([max_pos - SEQ // 2 + ar, 2 * max_pos - SEQ + ar])
    return [first.astype(np.int64), second.astype(np.int64)], max_pos


def _grids():
    """Vision towers: two (row, column) patch grids of 4 x 6, at the origin and far from it."""
    rows, cols = np.meshgrid(np.arange(4), np.arange(6), indexing="ij")
    grid = np.stack([rows.ravel(), cols.ravel()])
    return [grid.astype(np.int64), (grid + np.array([[60], [90]])).astype(np.int64)]


def _mrope_positions(positions, axes):
    """(axes, batch, seq): text positions with distinct components per axis (temporal, height,
    width, ...), as an image's patches have them; axis 0 keeps the text position."""
    ar = np.arange(positions.shape[-1])
    return np.stack([positions + a * (ar % (a + 3)) for a in range(axes)])


def _position_axes(sub, layer_type, module):
    """How many position components the module rotates by: the length of its M-RoPE sections, from
    the config or, when the config has none, the module's own default (Qwen2-VL's [16, 24, 24],
    GLM-4V's [8, 12, 12]); 1 without M-RoPE."""
    section = _rope_parameters(sub, layer_type).get("mrope_section") or getattr(module, "mrope_section", None)
    if isinstance(section, dict):
        section = section.get(layer_type)
    return len(section) if isinstance(section, (list, tuple)) and section else 1


def _table_is_batched(table):
    """Text tables carry (batch, ..., seq, width); vision towers' (patches, width)."""
    return (table if torch.is_tensor(table) else table[0]).ndim >= 3


class Transformers:
    """One case as transformers runs it: a fresh module per call (dynamic NTK and LongRoPE keep
    state), its cos/sin, the frequencies after the call, and its apply function. The generic
    adapter, for every module whose forward takes (x, position_ids[, layer_type])."""

    def __init__(self, fam, case):
        self.fam, self.case = fam, case
        self.sub = case.sub
        forward = list(inspect.signature(fam.cls.forward).parameters)[1:]
        if forward[:2] != ["x", "position_ids"]:
            raise Unchecked(f"{fam.cls.__name__}.forward{tuple(forward)} takes no position ids: no adapter drives it")
        self.takes_layer_type = "layer_type" in forward
        self.apply_fn = choose_apply(fam, self.sub)
        if self.apply_fn is None:
            raise Unchecked("no apply function for this module in " + fam.modeling.__name__)

    @staticmethod
    def build(fam, config):
        return fam.cls(config)

    @staticmethod
    def fixed_default(fam, top, path):
        """(config, what was fixed): transformers' default config as the module runs it; the fix is
        None for all but the families whose default config cannot run their own module."""
        return top, None

    @staticmethod
    def variants(sub):
        """The distinct ways the model calls the module (a case each): [None] but for SAM3."""
        return [None]

    def grids(self):
        """A vision tower's (row, column) patch grids, as rotary takes them."""
        return _grids()

    def unlike_rotary(self, positions):
        """None when the module rotates each token by the integer position(s) the sweep gives it;
        else what it rotates by instead, which rotary (integer positions times theta) cannot take."""
        return None

    note = None  # what a match of this module needs saying (where transformers applies the rotation)

    def new_module(self):
        try:
            return self.build(self.fam, self.sub)
        except TRANSFORMERS_ERRORS as e:
            raise Unchecked(f"{self.fam.cls.__name__}(config) raises {type(e).__name__}: {_first_line(e)}") from None

    def forward(self, module, positions):
        """The module's output for positions (batch, seq), (3, batch, seq) or (2, patches)."""
        ids = torch.from_numpy(positions)
        if self.fam.vision:
            ids = ids.T.contiguous()  # transformers' vision ids are (patches, 2)
        x = torch.zeros(1)
        return module(x, ids, self.case.layer_type) if self.takes_layer_type else module(x, ids)

    def call(self, positions):
        """(table, inv_freq, attention_scaling): the module's output for these positions (cos, sin
        or a complex tensor) and its buffers after the call."""
        module = self.new_module()
        out = self.forward(module, positions)
        prefix = f"{self.case.layer_type}_" if self.case.layer_type and self.takes_layer_type else ""
        inv_freq = getattr(module, prefix + "inv_freq", None)
        scaling = getattr(module, prefix + "attention_scaling", 1.0)
        if torch.is_tensor(out):
            table = out
        else:
            first, second = out
            # The order of (cos, sin) is read from the output itself: sin is 0 at position 0.
            # GPT-J and CodeGen return (sin, cos) (modeling_gptj.py, GPTJRotaryEmbedding.forward).
            zero = _first_token(first)
            table = (
                (second, first)
                if torch.all(zero == 0) and not torch.all(_first_token(second) == 0)
                else (first, second)
            )
        return table, (None if inv_freq is None else inv_freq.detach().clone()), float(scaling)

    output_perm = None

    def apply(self, q, table):
        """The family's apply function on q, shaped (batch, heads, seq, d) or, for vision towers,
        (patches, heads, d); its output in the same shape, with the channels in input order (see
        `output_order`)."""
        out = self.apply_raw(q, table)
        return out if self.output_perm is None else out[..., self.output_perm]

    def apply_raw(self, q, table):
        """The apply function's output, its channels as it returns them."""
        return apply_any(self.apply_fn, q, table)

    def output_order(self, table, d):
        """The channel permutation the apply function adds to its output, read at position 0
        where the rotation is the identity (times the attention factor): DeepSeek-V3's
        apply_rotary_pos_emb_interleave rotates the pairs (2j, 2j + 1) and returns
        cat([rotated evens, rotated odds]) (modeling_deepseek_v3.py). None when there is none."""
        tokens = (1, 1) if _table_is_batched(table) else (1,)
        at_zero = _per_token(self.apply_raw(_heads(torch.eye(d), tokens), _first_token(table)))[0]
        nonzero = at_zero != 0  # (d_in, d_out)
        if not bool((nonzero.sum(dim=1) == 1).all()):
            return None
        perm = nonzero.float().argmax(dim=1)
        if torch.equal(perm, torch.arange(d)) or not torch.equal(perm.sort().values, torch.arange(d)):
            return None
        self.output_perm = perm
        return perm


class OwnCall(Transformers):
    """The base of the adapters for modules whose forward takes no (x, position_ids): each calls its
    module as its model does, with the input the model gives it for the sweep's positions."""

    def __init__(self, fam, case):
        self.fam, self.case = fam, case
        self.sub = case.sub
        self.takes_layer_type = False
        self.apply_fn = choose_apply(fam, self.sub)


def _xy(positions):
    """(patches, 2) (x, y) = (column, row) pairs of a (row, column) grid: the order Gemma 4's image
    processor and SAM 3's layers give their position ids in."""
    return torch.from_numpy(np.ascontiguousarray(positions[::-1].T))


def _grid_size(positions):
    """(rows, columns) of the smallest patch grid holding the sweep's (row, column) patches."""
    return tuple(int(v) + 1 for v in positions.max(axis=1))


class RoFormer(OwnCall):
    """RoFormer's module is a frozen nn.Embedding holding [sin | cos] per position, built in float64
    by `create_weight` (RoFormerPreTrainedModel._init_weights copies it in); RoFormerModel builds it
    for max_position_embeddings positions of hidden_size // num_attention_heads channels and passes
    `embed_positions(...)[None, None]` to the static `apply_rotary_position_embeddings`
    (modeling_roformer.py: RoFormerSinusoidalPositionalEmbedding, RoFormerEncoder.__init__ and
    forward)."""

    @staticmethod
    def build(fam, config):
        module = fam.cls(config.max_position_embeddings, config.hidden_size // config.num_attention_heads)
        with torch.no_grad():
            module.weight.copy_(module.create_weight())
        return module

    def forward(self, module, positions):
        return module(positions.shape, 0, torch.from_numpy(positions))[:, None]


class Clvp(OwnCall):
    """CLVP's encoder computes its angles for positions 0 .. seq_len - 1 from the hidden states' length
    (ClvpRotaryPositionalEmbedding.forward); its attention takes their cos() and sin(), which
    apply_rotary_pos_emb indexes by position_ids, and rotates the first rotary_emb_dim channels of q,
    k and v (ClvpEncoder.forward, ClvpSelfAttention.forward). A sequence long enough for the sweep's
    positions is the model's input."""

    def forward(self, module, positions):
        angles = module(torch.zeros(1).expand(1, int(positions.max()) + 1, 1))
        cos, sin = angles.cos().squeeze(0), angles.sin().squeeze(0)
        ids = torch.from_numpy(positions)
        return cos[ids], sin[ids]

    def apply_raw(self, q, table):
        # The tables are indexed by position already (forward), so apply's own `cos[position_ids]`
        # is given the identity index.
        def apply(q, cos, sin):
            return self.fam.modeling.apply_rotary_pos_emb(q, q, q, cos, sin, ...)

        return apply_any(apply, q, table)


class AudioConformer(OwnCall):
    """Wav2Vec2-Conformer and Wav2Vec2-BERT: the encoder computes cos/sin for positions 0 .. seq_len - 1
    from the hidden states' length, stacked as (2, seq, 1, 1, head_size), and each attention layer
    rotates its input hidden states per head with them, before linear_q and linear_k
    (`SelfAttention._apply_rotary_embedding`). A sequence long enough for the sweep's positions is the
    model's input; each token takes its position's row."""

    note = (
        "transformers rotates the attention's input hidden states, per head, before linear_q and linear_k "
        "(SelfAttention._apply_rotary_embedding), not q and k: rotary rotates the same tensor alike"
    )

    @staticmethod
    def fixed_default(fam, top, path):
        # The encoder builds the rotary module only for position_embeddings_type "rotary" (Wav2Vec2*Encoder.__init__);
        # the default config's "relative" / "relative_key" builds another, so the case takes the value that builds it.
        old = _get(top, path).position_embeddings_type
        if old == "rotary":
            return top, None
        top = copy.deepcopy(top)
        _get(top, path).position_embeddings_type = "rotary"
        return top, (
            f"transformers' default config has position_embeddings_type {old!r}, for which the encoder builds "
            f"no rotary module; set to 'rotary', the value for which it builds {fam.cls.__name__}"
        )

    def forward(self, module, positions):
        stacked = module(torch.zeros(1).expand(1, int(positions.max()) + 1, 1))
        cos, sin = stacked[:, torch.from_numpy(positions), 0, 0]  # (batch, seq, head_size) each
        return cos, sin

    def apply_raw(self, q, table):
        b, h, s, d = q.shape
        attention = self._attention()
        attention.num_heads = h  # the rotation is per head_size channels; the sweep's q has its own head count
        hidden = q.transpose(1, 2).reshape(b, s, h * d)
        stacked = torch.stack(table).transpose(1, 2)[..., None, :]  # (2, seq, batch, 1, head_size)
        return attention._apply_rotary_embedding(hidden, stacked).view(b, s, h, d).transpose(1, 2)

    def _attention(self):
        if not hasattr(self, "attention"):
            cls = next(
                c
                for c in vars(self.fam.modeling).values()
                if inspect.isclass(c) and "_apply_rotary_embedding" in vars(c)
            )
            self.attention = cls(self.sub)
        return self.attention


class VJepa2(OwnCall):
    """V-JEPA 2 has no rotary module: its attention (VJEPA2RopeAttention) derives (frame, row, column)
    from each token's index in the video's patch grid (get_position_ids, from the token indices the
    predictor passes as position_mask) and rotates three chunks of the head by them
    (apply_rotary_embeddings, rotate_queries_or_keys). The encoder's attention is driven
    (hidden_size, num_attention_heads; the predictor's has pred_* sizes, which rotary does not read)."""

    module_class = "VJEPA2RopeAttention"

    @staticmethod
    def build(fam, config):
        return fam.cls(config, config.hidden_size, config.num_attention_heads)

    def call(self, positions):
        self.module = self.new_module()
        ids = torch.from_numpy(positions)
        axes = self.module.get_position_ids(torch.zeros(1).expand(*ids.shape, 1), masks=ids)  # each (batch, heads, seq)
        # the positions as a table: (batch, seq, 3), which the sweep slices by token like cos/sin
        return torch.stack([a[:, 0] for a in axes], dim=-1), None, 1.0

    def apply_raw(self, q, table):
        # each axis's positions as (batch, 1, seq), as get_position_ids gives them (one row per head)
        return self.module.apply_rotary_embeddings(q, tuple(table[..., a][:, None] for a in range(3)))


class PatchCentres(OwnCall):
    """DINOv3 (and EoMT-DINOv3, Sapiens2): the module takes the pixel values and rotates each patch by
    2 pi times its centre's coordinates normalized to [-1, 1] over the image's patch grid
    (get_patches_center_coordinates), rows by the first head_dim / 4 frequencies and columns by the
    rest, repeated for the pair (j, j + head_dim / 2) (`angles.tile(2)`): positions that depend on the
    image's size and are not integers. The sweep's patches are taken from the smallest image holding
    them."""

    patch_grid = True

    def _patch(self):
        size = self.sub.patch_size
        return tuple(size) if isinstance(size, (list, tuple)) else (size, size)

    def forward(self, module, positions):
        rows, cols = _grid_size(positions)
        (ph, pw), index = self._patch(), torch.from_numpy(positions[0] * cols + positions[1])
        cos, sin = module(torch.zeros(1).expand(1, 3, rows * ph, cols * pw))
        return cos[index], sin[index]

    def unlike_rotary(self, positions):
        rows, cols = _grid_size(positions)
        coords = self.fam.modeling.get_patches_center_coordinates(rows, cols, dtype=torch.float32, device="cpu")
        r, c = (int(v) for v in positions[:, 0])
        y, x = (2 * math.pi * coords[r * cols + c]).tolist()
        return (
            f"positions: transformers rotates a patch by 2 pi times its centre's (row, column) coordinates "
            f"normalized to [-1, 1] over the image's patch grid (get_patches_center_coordinates): patch ({r}, {c}) "
            f"of a {rows} x {cols} grid by ({y:.6g}, {x:.6g}), where rotary takes integer positions"
        )


class LightGlue(OwnCall):
    """LightGlue's angles are `projector(keypoints)`: a trained nn.Linear(2, head_dim / 2) without bias
    applied to each keypoint's (x, y) coordinates normalized to the image (normalize_keypoints), each
    angle repeated for the pair (2j, 2j + 1) (LightGluePositionalEncoder.forward,
    LightGlueForKeypointMatching.forward). The sweep's patches are its keypoints, in an image of as
    many pixels."""

    patch_grid = True

    def forward(self, module, positions):
        rows, cols = _grid_size(positions)
        keypoints = self.fam.modeling.normalize_keypoints(_xy(positions).float()[None], rows, cols)
        ((cos, sin),) = module(keypoints)
        return cos[0], sin[0]

    def unlike_rotary(self, positions):
        projector = self.new_module().projector
        return (
            f"angles: transformers' are a trained nn.Linear({projector.in_features}, {projector.out_features}) "
            "(LightGluePositionalEncoder.projector: weights, not config values) of each keypoint's (x, y) "
            "normalized to the image, where rotary multiplies integer positions by theta"
        )


class CohereCompass(Transformers):
    """Cohere Compass keeps rope_parameters per layer type, and its default config has none
    (CohereCompassTextConfig.convert_rope_params_to_dict skips the generic defaults), which its module
    cannot build (KeyError 'full_attention'). The case gives each layer type what the generic
    conversion gives a config without RoPE parameters: the config class's default_rope_type and
    default_theta (RotaryEmbeddingConfigMixin.convert_rope_params_to_dict)."""

    @staticmethod
    def fixed_default(fam, top, path):
        if _get(top, path).rope_parameters:
            return top, None
        top = copy.deepcopy(top)
        sub = _get(top, path)
        default = {"rope_type": sub.default_rope_type, "rope_theta": sub.default_theta}
        sub.rope_parameters = {t: dict(default) for t in dict.fromkeys(sub.layer_types)}
        sub.standardize_rope_params()
        sub.validate_rope()
        return top, (
            f"transformers' default config has no rope_parameters, which {fam.cls.__name__} reads per layer "
            f"type: each layer type given the config class's default_rope_type {default['rope_type']!r} and "
            f"default_theta {default['rope_theta']:g}"
        )


class DefaultSections(Transformers):
    """GLM-4.1V and GLM-Image: without mrope_section in the config the module splits its frequencies by
    its own, [8, 12, 12] (32 frequencies), and rotates head_dim * partial_rotary_factor channels; the
    default config has head_dim 128 and no partial_rotary_factor (64 frequencies), which the module
    cannot split. The case sets the one partial_rotary_factor for which the module's own sections
    cover its frequencies, 2 * sum(mrope_section) / head_dim: 0.5, which Glm4vMoeTextConfig also
    supplies by default for the same model line."""

    @staticmethod
    def fixed_default(fam, top, path):
        params = _get(top, path).rope_parameters
        if "mrope_section" in params or "partial_rotary_factor" in params:
            return top, None
        top = copy.deepcopy(top)
        sub = _get(top, path)
        section = fam.cls(sub).mrope_section  # the module's own default
        head_dim = getattr(sub, "head_dim", None) or sub.hidden_size // sub.num_attention_heads
        sub.rope_parameters["partial_rotary_factor"] = 2 * sum(section) / head_dim
        sub.standardize_rope_params()
        sub.validate_rope()
        return top, (
            f"transformers' default config has no mrope_section and no partial_rotary_factor, and its "
            f"module's own mrope_section {section} covers {sum(section)} of head_dim {head_dim}'s {head_dim // 2} "
            f"frequencies: partial_rotary_factor set to 2 * sum(mrope_section) / head_dim = "
            f"{2 * sum(section) / head_dim:g}"
        )


class Gemma4Vision(Transformers):
    """Gemma 4's vision tower takes its patch positions as (x, y) = (column, row) pairs, (batch, patches,
    2) (Gemma4ImageProcessor: meshgrid(arange(width), arange(height), indexing="xy")), and its attention
    rotates q as (batch, patches, heads, head_dim) with apply_multidimensional_rope, which splits the
    head into one part per position component (position_ids.shape[-1] of them)."""

    def forward(self, module, positions):
        cos, sin = module(torch.zeros(1), _xy(positions)[None])
        return cos[0], sin[0]

    def call(self, positions):
        # the position ids travel with cos/sin, sliced by token alike: the apply function reads them
        table, inv_freq, scaling = super().call(positions)
        return (*table, _xy(positions)), inv_freq, scaling

    def apply_raw(self, q, table):
        cos, sin, ids = table
        return self.fam.modeling.apply_multidimensional_rope(q[None], cos[None], sin[None], ids[None])[0]


class Sam3(Transformers):
    """SAM 3's ViT layers build their own position ids (Sam3ViTLayer.precompute_positions): each patch's
    (x, y) = (column, row), times window_size / patches per row, which is 1 in the windowed layers and
    window_size / (image_size / patch_size) in the global ones (global_attn_indexes). Its attention
    rotates q as (batch, heads, patches, head_dim) against (1, patches, head_dim) tables
    (Sam3ViTRoPEAttention.forward, apply_rotary_pos_emb_2d)."""

    @staticmethod
    def variants(sub):
        return ["windowed layers"] + (["global layers"] if sub.global_attn_indexes else [])

    def _scale(self):
        window = self.sub.window_size if self.case.variant == "windowed layers" else 0
        ids = self.fam.modeling.Sam3ViTLayer.precompute_positions(self.sub, window)
        return float(ids[1, 0])  # patch (0, 1): its x, 1, times the scale

    def forward(self, module, positions):
        cos, sin = module(torch.zeros(1), _xy(positions).float() * self._scale())
        return cos[0], sin[0]

    def unlike_rotary(self, positions):
        scale = self._scale()
        if scale == 1:
            return None
        return (
            f"positions: transformers' {self.case.variant} rotate patch (row, column) by (column, row) x "
            f"{scale:.6g} (window_size / patches per row, Sam3ViTLayer.precompute_positions), where rotary "
            "takes integer positions"
        )

    def apply_raw(self, q, table):
        x = q.transpose(0, 1)[None]  # (1, heads, patches, head_dim)
        return self.fam.modeling.apply_rotary_pos_emb_2d(x, x, *table)[0][0].transpose(0, 1)


class ErnieVl(Transformers):
    """ERNIE-4.5-VL's text module keeps its frequencies pre-permuted in its inv_freq buffer: the first
    s0 + s1 hold the even then the odd ones of the natural order, which its forward's recomposition
    (height and width stacked pair by pair) puts back (Ernie4_5_VLMoeTextRotaryEmbedding
    .compute_default_rope_parameters and .recomposition_frequencies). The buffer, put back in the
    order its pairs use, is the theta to compare."""

    def call(self, positions):
        table, inv_freq, scaling = super().call(positions)
        spatial = sum(self.new_module().mrope_section[:2])
        natural = inv_freq.clone()
        natural[:spatial][0::2], natural[:spatial][1::2] = inv_freq[: spatial // 2], inv_freq[spatial // 2 : spatial]
        return table, natural, scaling


class Phimoe(Transformers):
    """PhiMoE's forward ignores its inv_freq buffer (which dynamic_rope_update switches to long_factor
    past the original context) and rotates by `rope_init_fn(config)`, computed without the sequence
    length: short_factor at every length, its cos/sin scaled by long_mscale past the original
    context, else short_mscale (PhimoeRotaryEmbedding.forward). Those are the frequencies and the
    scale to compare (its attention_scaling buffer is LongRoPE's own, which it does not apply)."""

    def call(self, positions):
        table, _, _ = super().call(positions)
        module = self.new_module()
        # the scale it applied, read off its table: cos^2 + sin^2 = mscale^2 (float32 cos/sin, so to ~1e-7)
        cos, sin = (t.reshape(-1)[0].double() for t in table)
        return table, module.rope_init_fn(module.config)[0], float(torch.hypot(cos, sin))


class Llama4Vision(OwnCall):
    """Llama 4's vision tower rotates by a fixed table, `freqs_ci`, of (image_size / patch_size)^2
    patches in raster order and a class token last (Llama4VisionRotaryEmbedding._compute_freqs_ci):
    patch i of a side-wide grid turns by (column + 1, row + 1), the class token by 0. rotary takes
    each token's (row, column) as given, so the sweep's grids are the positions Llama 4 uses, 1-based
    with (0, 0) for the class token, and transformers' rows for them are looked up in its table. Its
    attention rotates q as (batch, patches, heads, head_dim) (vision_apply_rotary_emb)."""

    patch_grid = True

    def _side(self):
        return self.sub.image_size // self.sub.patch_size

    def grids(self):
        side = self._side()
        rows, cols = np.meshgrid(np.arange(1, 5), np.arange(1, 7), indexing="ij")
        near = np.concatenate([[[0], [0]], np.stack([rows.ravel(), cols.ravel()])], axis=1)
        far = np.stack([rows.ravel() + side - 4, cols.ravel() + side - 6])
        return [near.astype(np.int64), far.astype(np.int64)]

    def forward(self, module, positions):
        side = self._side()
        rows, cols = positions
        index = np.where((rows == 0) & (cols == 0), side * side, (rows - 1) * side + (cols - 1))
        return module(torch.zeros(1))[torch.from_numpy(index)].reshape(len(index), -1)

    def apply_raw(self, q, table):
        return self.fam.modeling.vision_apply_rotary_emb(q[None], q[None], table)[0][0]


ADAPTERS = {
    "phimoe": Phimoe,
    "ernie4_5_vl_moe": ErnieVl,
    "llama4.vision": Llama4Vision,
    "roformer": RoFormer,
    "clvp": Clvp,
    "wav2vec2_bert": AudioConformer,
    "wav2vec2_conformer": AudioConformer,
    "vjepa2": VJepa2,
    **dict.fromkeys(("dinov3_vit", "eomt_dinov3", "sapiens2"), PatchCentres),
    "lightglue": LightGlue,
    "cohere_compass": CohereCompass,
    **dict.fromkeys(("glm4v", "glm_image"), DefaultSections),
    "gemma4.vision": Gemma4Vision,
    "sam3": Sam3,
}


def adapter_for(fam):
    return ADAPTERS.get(fam.name, Transformers)


def choose_apply(fam, sub):
    """The module-level apply function the family's attention uses with this rotary module.

    Vision towers: the `*vision*` or 2-D variant when there is one. Text: the `*_interleave`
    variant where the attention calls it unconditionally, or under `config.rope_interleave` when
    the config sets it (DeepSeek-V3: `if self.config.rope_interleave:` in its attention)."""
    m = fam.modeling
    functions = {
        n: getattr(m, n)
        for n in dir(m)
        if re.match(r"apply_(rotary|\w*rope)", n)
        and inspect.isfunction(getattr(m, n))
        and getattr(m, n).__module__ == m.__name__
    }
    if fam.cls is not None:  # RoFormer keeps its apply function on a layer class
        for owner in vars(m).values():
            if inspect.isclass(owner) and owner.__module__ == m.__name__:
                for n, f in vars(owner).items():
                    if n.startswith("apply_rotary") and isinstance(f, staticmethod):
                        functions.setdefault(n, f.__func__)
    source = inspect.getsource(m)
    if fam.kind == "vision":  # Gemma 4's tower: apply_multidimensional_rope
        order = (
            [n for n in functions if "vision" in n]
            + [n for n in functions if "2d" in n and "cross" not in n]
            + [n for n in functions if "multidimensional" in n]
        )
    else:
        order = []
        interleave = [n for n in functions if n.endswith("_interleave")]
        if interleave:
            conditional = "config.rope_interleave" in source
            if not conditional or getattr(sub, "rope_interleave", False):
                order += interleave
    order += (
        ["apply_rotary_pos_emb", "apply_rotary_emb"] + [n for n in functions if "vision" not in n] + list(functions)
    )
    return next((functions[n] for n in order if n in functions), None)


def _call_apply(fn, q, table):
    """fn called with q (as q and k: its k output is not used), and the module's table, each
    argument found by its parameter name."""
    values = {
        "q": q,
        "k": q,
        "xq": q,
        "xk": q,
        "x": q,
        "tensor": q,
        "hidden_states": q,
        "query_layer": q,
        "key_layer": q,
    }
    if torch.is_tensor(table):
        values["freqs_cis"] = values["sinusoidal_pos"] = table
    else:
        values["cos"], values["sin"] = table
    args = []
    for name, spec in inspect.signature(fn).parameters.items():
        if name in values:
            args.append(values[name])
        elif spec.default is inspect.Parameter.empty and spec.kind is spec.POSITIONAL_OR_KEYWORD:
            raise Unchecked(f"{fn.__name__}{tuple(inspect.signature(fn).parameters)}: no value for {name!r}")
        else:
            break
    out = fn(*args)
    return out[0] if isinstance(out, tuple) else out


def apply_any(fn, q, table):
    """Runs the apply function on q as the family's attention would: q in (batch, heads, seq, d)
    or (batch, seq, heads, d) (whichever its cos/sin broadcast against), all head channels or the
    first rotary_dim of them (the attention splits off pass-through channels itself: Phi,
    StableLM, Persimmon); the first of these that runs is taken."""
    width = table.shape[-1] if torch.is_tensor(table) else table[0].shape[-1]
    widths = [q.shape[-1]] + [w for w in (2 * width, width) if w < q.shape[-1]]
    layouts = [False] if q.ndim == 3 else [False, True]
    errors = []
    for w in widths:
        for transpose in layouts:
            x = q[..., :w]
            x = x.transpose(1, 2) if transpose else x
            try:
                out = _call_apply(fn, x.contiguous(), table)
            except Unchecked:
                raise
            except TRANSFORMERS_ERRORS as e:
                errors.append(f"{type(e).__name__}: {_first_line(e)}")
                continue
            if out.shape != x.shape:
                errors.append(f"output shape {tuple(out.shape)} for input {tuple(x.shape)}")
                continue
            out = out.transpose(1, 2) if transpose else out
            return torch.cat([out, q[..., w:]], dim=-1) if w < q.shape[-1] else out
    raise Unchecked(f"{fn.__name__} runs on none of the shapes tried: {errors[0]}")


def _token_slice(x, start, stop, axis):
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, stop)
    return x[tuple(index)]


def _slice_table(table, start, stop):
    """The module's cos/sin for tokens start..stop-1 of each row (tokens are the tables' axis -2)."""
    if torch.is_tensor(table):
        return _token_slice(table, start, stop, -2)
    return tuple(_token_slice(t, start, stop, -2) for t in table)


def _first_token(table):
    """The module's cos/sin for the first token of the first row (position 0, or (0, 0, 0))."""

    def first(t):
        t = _token_slice(t, 0, 1, -2)
        return _token_slice(t, 0, 1, 0) if t.ndim >= 3 else t

    return first(table) if torch.is_tensor(table) else tuple(first(t) for t in table)


def _heads(vectors, tokens):
    """q whose head h is vectors[h] at every token: (batch, heads, seq, d) or (n, heads, d)."""
    if len(tokens) == 2:
        b, s = tokens
        return vectors[None, :, None, :].expand(b, vectors.shape[0], s, vectors.shape[1]).contiguous()
    return vectors[None].expand(tokens[0], *vectors.shape).contiguous()


def _per_token(x):
    """(tokens, heads, d) view of a rotated q, tokens in row-major (batch, seq) order."""
    if x.ndim == 4:  # (batch, heads, seq, d)
        return x.permute(0, 2, 1, 3).reshape(-1, x.shape[1], x.shape[-1])
    return x


def pairing(rotated_eye):
    """The structure of a rotation, from one-hot heads (head c = e_c) rotated at a few tokens: for
    each input channel, the other output channels its value reaches, as a tuple of tuples."""
    reach = (_per_token(rotated_eye) != 0).any(dim=0).numpy()  # (d_in, d_out)
    np.fill_diagonal(reach, False)
    return tuple(tuple(int(j) for j in np.flatnonzero(row)) for row in reach)


def describe_pairing(pairs):
    """'half-split (j, j + 32), 64 of 128 channels' / 'interleaved (2j, 2j + 1), ...' / the pairs."""
    d = len(pairs)
    rotated = [c for c in range(d) if pairs[c]]
    if not rotated:
        return f"no channel rotated, of {d}"
    if any(len(p) != 1 for p in pairs if p):
        multi = next(c for c in range(d) if len(pairs[c]) > 1)
        return f"channel {multi} mixes with {list(pairs[multi])} (not a pair rotation), {len(rotated)} of {d} rotated"
    partner = {c: pairs[c][0] for c in rotated}
    r = len(rotated)
    where = "" if rotated == list(range(r)) else f" at channels {_ranges(rotated)}"
    if all(partner[c] == c + r // 2 for c in rotated[: r // 2]):
        return f"half-split (j, j + {r // 2}), {r} of {d} channels{where}"
    if all(partner[c] == c + 1 for c in rotated[0::2]):
        return f"interleaved (2j, 2j + 1), {r} of {d} channels{where}"
    sample = ", ".join(f"({c}, {partner[c]})" for c in rotated if c < partner[c])
    return f"pairs {sample[:80]}{'...' if len(sample) > 80 else ''} ({r} of {d} channels)"


def value_heads(pairs):
    """Three probe vectors for a pair rotation: ones on each pair's first channel, ones on each
    pair's second channel, ones on the pass-through channels. Rotated, they hold every entry of
    the rotation matrix: cos and sin of each pair, and the pass-through channels' factor."""
    d = len(pairs)
    heads = torch.zeros(3, d)
    which = torch.empty(d, dtype=torch.long)
    for c in range(d):
        h = 2 if not pairs[c] else (0 if c < pairs[c][0] else 1)
        heads[h, c] = 1.0
        which[c] = h
    return heads, which


def oracle(values, which, pairs, x):
    """The rotation of x (tokens, heads, d) by the matrices `values` (tokens, 3, d) hold, in
    float64: out[o] = m[o, o] x[o] + m[o, p(o)] x[p(o)], where m[o, c] = values[which[c], o].
    Also the scale sum |m[o, c]| |x[c]| of each output, for the cancellation allowance."""
    d = x.shape[-1]
    channels = np.arange(d)
    partner = np.array([p[0] if p else c for c, p in enumerate(pairs)])
    has = np.array([bool(p) for p in pairs])
    which = which.numpy()
    diag = values[:, which, channels]  # (tokens, d): m[o, o]
    off = values[:, which[partner], channels] * has  # m[o, p(o)]
    x_partner = x[..., partner]
    out = diag[:, None] * x + off[:, None] * x_partner
    scale = np.abs(diag)[:, None] * np.abs(x) + np.abs(off)[:, None] * np.abs(x_partner)
    return out, scale


# -------------------------------------------------------------------------------------------------
# rotary's side


def rotary_rotate(rope, q, positions, vision):
    """rotary's rotation of q (same shapes as Transformers.apply) at these positions."""
    out = q.clone()
    rope.rotate(out, positions, layout="shd" if vision else "bhsd")
    return out


def _half_to_interleaved(d, r):
    """perm[c]: the half-split channel that sits at interleaved channel c (pair j of r channels:
    (j, j + r/2) -> (2j, 2j + 1)); channels past r stay."""
    perm = list(range(d))
    for j in range(r // 2):
        perm[2 * j], perm[2 * j + 1] = j, j + r // 2
    return torch.tensor(perm)


def rotary_with_other_layout(rope, q, positions, vision):
    """rotary's rotation with the other pairing, its channels regrouped so that rotary's pairs land
    on the other layout's (a diagnosis: would the other pairing match?)."""
    perm = _half_to_interleaved(q.shape[-1], rope.rotary_dim)
    inverse = torch.argsort(perm)
    # Half-split emulating interleaved: channel c of the input goes where rotary pairs it (inverse[c]),
    # and rotary's output at perm[c] comes back to c, so rotary's pair (j, j + r/2) acts on (2j, 2j + 1).
    if rope.layout == "half_split":
        return rotary_rotate(rope, q[..., inverse].contiguous(), positions, vision)[..., perm]
    return rotary_rotate(rope, q[..., perm].contiguous(), positions, vision)[..., inverse]


@contextlib.contextmanager
def correctly_rounded_pow():
    """torch's `**` on float32 tensors, correctly rounded: computed in float64 and rounded once.

    torch's vectorised float32 pow is not correctly rounded; rotary's is. A theta that differs by
    more than an ulp is computed again by transformers' own code under this patch: if it then
    agrees, the difference was torch's pow (1 ulp, which the reciprocal and scaling after it can
    turn into 2); if not, it is a difference in the formula. Python numbers stay float64, as torch
    keeps a double exponent (dynamic NTK's dim / (dim - 2))."""
    pow_, rpow_ = torch.Tensor.__pow__, torch.Tensor.__rpow__

    def exact(base, exponent, original):
        result = original()
        if not torch.is_tensor(result) or result.dtype != torch.float32:
            return result
        b = base.double() if torch.is_tensor(base) else torch.tensor(float(base), dtype=torch.float64)
        e = exponent.double() if torch.is_tensor(exponent) else torch.tensor(float(exponent), dtype=torch.float64)
        return torch.pow(b, e).float()

    torch.Tensor.__pow__ = lambda self, other: exact(self, other, lambda: pow_(self, other))
    torch.Tensor.__rpow__ = lambda self, other: exact(other, self, lambda: rpow_(self, other))
    try:
        yield
    finally:
        torch.Tensor.__pow__, torch.Tensor.__rpow__ = pow_, rpow_


@contextlib.contextmanager
def true_scalar_division():
    """`number / tensor` on float32 tensors as one correctly rounded division.

    torch evaluates `number / tensor` (Tensor.__rtruediv__) as reciprocal(tensor) * number: two
    roundings. A theta that still differs with a correctly rounded pow is computed once more under
    this patch too; if it then agrees, that is the difference (Llama 3.1's rule divides 2 * pi and
    original_max_position_embeddings by tensors)."""
    rtruediv = torch.Tensor.__rtruediv__

    def divide(self, other):
        if isinstance(other, (int, float)) and self.dtype == torch.float32:
            return torch.tensor(float(other), dtype=torch.float32) / self
        return rtruediv(self, other)

    torch.Tensor.__rtruediv__ = divide
    try:
        yield
    finally:
        torch.Tensor.__rtruediv__ = rtruediv


# -------------------------------------------------------------------------------------------------
# one case


def _theta_ulps(rope_type):
    return 2 if rope_type == "yarn" else 1


def _hf_theta_for_rotary(rope, hf_inv):
    """transformers' theta in rotary's pair order when rotary keeps more values than the module
    (2D vision RoPE: the same frequencies for rows and columns): each of rotary's values replaced
    by transformers' nearest one, or None where one is more than 2 ulps from every value."""
    ours = rope.inv_freq
    theirs = hf_inv.detach().numpy().astype(np.float32)
    nearest = np.abs(ours[:, None].astype(np.float64) - theirs[None, :].astype(np.float64)).argmin(axis=1)
    mapped = theirs[nearest]
    return mapped if np.all(ulp_distance(mapped, ours) <= 2) else None


def _fmt(x):
    return f"{x:.9g}"


def _theta_diagnosis(ours, theirs, rope):
    if ours.size != theirs.size:
        return (
            f"rotary_dim: transformers rotates {2 * theirs.size} channels (theta has {theirs.size} entries), "
            f"rotary {rope.rotary_dim} (head_dim {rope.head_dim}, partial_rotary_factor "
            f"{rope.config.partial_rotary_factor:g})"
        )
    ulps = ulp_distance(theirs, ours)
    j = int(np.argmax(ulps))
    bad = [int(i) for i in np.nonzero(ulps > _theta_ulps(rope.config.rope_type))[0]]
    text = (
        f"theta differs in pairs {_ranges(bad)} of {ours.size}; worst theta[{j}]: transformers "
        f"{_fmt(theirs[j])}, rotary {_fmt(ours[j])} ({int(ulps[j])} ulps)"
    )
    d = 2 * ours.size
    if ours.size > 1 and theirs[1] > 0 and ours[1] > 0:  # the base each theta[1] implies
        base_hf, base_ours = float(theirs[1]) ** (-d / 2), float(ours[1]) ** (-d / 2)
        if abs(base_hf / base_ours - 1) > 1e-3:
            text += f"; theta[1] implies a base of {base_hf:.6g} (transformers), {base_ours:.6g} (rotary)"
    if rope.config.rope_type == "llama3":
        band = _llama3_band(rope.config)
        if bad and all(j in band for j in bad):
            text += f"; all of them inside the llama3 smoothing band (pairs {_ranges(sorted(band))})"
    ratio = theirs.astype(np.float64) / ours.astype(np.float64)
    if np.all(np.abs(ratio / ratio[0] - 1) < 1e-5) and abs(ratio[0] - 1) > 1e-5:
        text += f"; every theta differs by the factor {ratio[0]:.6g}"
    return text


def _llama3_band(c):
    """The pairs Llama 3.1's rule blends (wavelength between original / high and original / low)."""
    r = c.rotary_dim
    theta = 1.0 / (c.rope_theta ** (np.arange(0, r, 2) / r))
    wavelength = 2 * np.pi / theta
    original = c.original_max_position_embeddings
    inside = (wavelength >= original / c.high_freq_factor) & (wavelength <= original / c.low_freq_factor)
    return {int(j) for j in np.flatnonzero(inside)}


def _position_of(positions, t, vision):
    """Token t's position, tokens in row-major (batch, seq) order: an int, or its components."""
    if vision:  # (2, patches)
        return tuple(int(v) for v in positions[:, t])
    if positions.ndim == 3:  # M-RoPE (3, batch, seq)
        return tuple(int(v) for v in positions.reshape(3, -1)[:, t])
    return int(positions.reshape(-1)[t])


def _tokens(positions, vision):
    return (positions.shape[-1],) if vision else positions.shape[-2:]


def check_case(fam, case):
    """The state of one case (see the module docstring)."""
    try:
        config = rotary.config_from_dict(case.rotary_input, case.layer_type, vision=case.rotary_vision)
        own = rotary.Rope(config)
    except rotary.Error as e:
        return Result("refused", str(e))
    hf = adapter_for(fam)(fam, case)
    sub = hf.sub
    stats = {
        "theta_equal": 0,
        "theta_size": 0,
        "matrix_err": 0.0,
        "qk_err": 0.0,
        "bf16_ulps": 0.0,
        "layout": str(own.config.layout),
    }
    calls = hf.grids() if fam.vision else _positions(case, sub)[0]
    axes = 1 if fam.vision else _position_axes(sub, case.layer_type, hf.new_module())
    notes = [hf.note] if hf.note else []
    for index, positions in enumerate(calls):
        where = "inside the trained context" if index == 0 else "across the trained context"
        if axes > 1:
            positions = _mrope_positions(positions, axes)
        try:
            table, hf_inv, scaling = hf.call(positions)
        except IndexError as e:
            if index == 0:
                raise Unchecked(f"{fam.cls.__name__}.forward raises IndexError: {_first_line(e)}") from None
            notes.append(f"transformers cannot index positions past its table ({_first_line(e)})")
            continue
        except Unchecked:
            raise
        except TRANSFORMERS_ERRORS as e:
            raise Unchecked(f"{fam.cls.__name__}.forward raises {type(e).__name__}: {_first_line(e)}") from None
        unlike = hf.unlike_rotary(positions) if index == 0 else None
        if unlike:
            return Result("mismatch", f"{where}: {unlike}", stats)
        if not fam.vision and axes != own.num_axes:
            section = _rope_parameters(sub, case.layer_type).get("mrope_section")
            source = (
                f"mrope_section {section}" if section else "the module's default mrope_section; the config has none"
            )
            return Result(
                "mismatch",
                f"position axes: transformers rotates by {axes} components per token ({source}), "
                f"rotary by {own.num_axes}",
            )
        # theta and attention factor, rotary's own for this call
        try:
            inv_freq, factor = own.frequencies_for(positions)
        except rotary.Error as e:
            return Result("mismatch", f"{where}: rotary cannot take transformers' positions: {e}", stats)
        hf_theta = inv_freq  # modules without a buffer (GPT-J, CodeGen keep a sin/cos table) give none
        if hf_inv is not None:
            hf_theta = hf_inv.detach().numpy().astype(np.float32)
            if own.num_axes > 1 and hf_theta.size != inv_freq.size:
                mapped = _hf_theta_for_rotary(own, hf_inv)
                if mapped is None:
                    return Result(
                        "mismatch",
                        f"{where}: rotary's theta ({inv_freq.size} values) are not all among "
                        f"transformers' ({hf_theta.size})",
                        stats,
                    )
                hf_theta = mapped
            ulps = ulp_distance(hf_theta, inv_freq) if hf_theta.size == inv_freq.size else None
            if ulps is None or np.any(ulps > _theta_ulps(own.config.rope_type)):
                if ulps is None or hf_inv.numel() != inv_freq.size or np.max(ulps) > 8:
                    return Result("mismatch", f"{where}: " + _theta_diagnosis(inv_freq, hf_theta, own), stats)
                with correctly_rounded_pow():
                    exact_inv = hf.call(positions)[1].detach().numpy().astype(np.float32)
                exact_ulps = ulp_distance(exact_inv, inv_freq)
                if np.any(exact_ulps > _theta_ulps(own.config.rope_type)):
                    text = (
                        f"{where}: "
                        + _theta_diagnosis(inv_freq, hf_theta, own)
                        + f" (also with torch's pow correctly rounded: {int(np.max(exact_ulps))} ulps)"
                    )
                    with correctly_rounded_pow(), true_scalar_division():
                        divided = hf.call(positions)[1].detach().numpy().astype(np.float32)
                    if not np.any(ulp_distance(divided, inv_freq)):
                        text += (
                            "; with `number / tensor` divided once (torch computes reciprocal(tensor) * "
                            "number) transformers' theta equals rotary's bit for bit"
                        )
                    return Result("mismatch", text, stats)
                stats["theta_pow"] = stats.get("theta_pow", 0) + 1
            stats["theta_equal"] += int(np.count_nonzero(ulps == 0))
            stats["theta_size"] += int(ulps.size)
        if abs(factor - scaling) > FACTOR_TOL:
            c = own.config
            return Result(
                "mismatch",
                f"{where}: attention factor: transformers {_fmt(scaling)}, rotary {_fmt(factor)} "
                f"(rotary read max_position_embeddings {c.max_position_embeddings}, original "
                f"{c.original_max_position_embeddings}, factor {c.factor}; transformers' config "
                f"has max_position_embeddings {getattr(sub, 'max_position_embeddings', None)})",
                stats,
            )
        rope = rotary.Rope(config, inv_freq=np.ascontiguousarray(hf_theta, dtype=np.float32), attention_factor=scaling)
        d = own.head_dim
        if index == 0 and hf.output_order(table, d) is not None:
            notes.append(
                "transformers' apply returns the rotated channels regrouped (the output is a fixed "
                "permutation of the rotation; q and k alike, so scores are unchanged): compared after "
                "undoing it"
            )
        # structure: one-hot heads at two tokens of each row whose position components are all
        # nonzero (at 0 a pair's sin is 0 and hides its partner): tokens 1, 2 of each row, patch
        # (1, 1) and (1, 2) of a grid. Both rows: V-JEPA 2 derives (frame, row, column) from a
        # token's index, all three nonzero only in the second row, far from 0.
        # (once per case: the pairing does not depend on the position)
        first = 1 if not fam.vision else 7
        few = _token_slice(positions, first, first + 2, -1)
        few_table = _slice_table(table, first, first + 2)
        if index == 0:
            eye = _heads(torch.eye(d), _tokens(few, fam.vision))
            their_pairs = pairing(hf.apply(eye, few_table))
            our_pairs = pairing(rotary_rotate(rope, eye, few, fam.vision))
            if their_pairs != our_pairs:
                text = (
                    f"{where}: transformers pairs {describe_pairing(their_pairs)}; rotary pairs "
                    f"{describe_pairing(our_pairs)}"
                )
                if pairing(rotary_with_other_layout(rope, eye, few, fam.vision)) == their_pairs:
                    text += "; rotary's other layout has transformers' pairs"
                return Result("mismatch", text, stats)
        # values: every matrix entry (cos, sin, pass-through) at every token
        tokens = _tokens(positions, fam.vision)
        heads, which = value_heads(their_pairs)
        probe = _heads(heads, tokens)
        theirs_v = _per_token(hf.apply(probe, table))
        ours_v = _per_token(rotary_rotate(rope, probe, positions, fam.vision))
        err = (theirs_v - ours_v).abs()
        if not float(err.max()) <= F32_MATRIX_TOL:
            t, h, o = np.unravel_index(int(torch.argmax(err)), err.shape)
            bad = torch.nonzero((err > F32_MATRIX_TOL).any(dim=0).any(dim=0)).flatten().tolist()
            text = (
                f"{where}: cos/sin differ: at position {_position_of(positions, int(t), fam.vision)}, output "
                f"channel {o}: transformers {float(theirs_v[t, h, o]):.7g}, rotary {float(ours_v[t, h, o]):.7g} "
                f"(|error| {float(err[t, h, o]):.2e}); channels differing: {_ranges(bad)}"
            )
            inverse = probe.clone()
            rope.rotate(inverse, positions, layout="shd" if fam.vision else "bhsd", inverse=True)
            if float((theirs_v - _per_token(inverse)).abs().max()) <= F32_MATRIX_TOL:
                text += "; transformers rotates by minus the angle: rotary's inverse rotation matches"
            return Result("mismatch", text, stats)
        stats["matrix_err"] = max(stats["matrix_err"], float(err.max()))
        # rotated q, float32, random values
        g = torch.Generator().manual_seed(index)
        shape = (tokens[0], 2, tokens[1], d) if len(tokens) == 2 else (tokens[0], 2, d)
        q = torch.randn(shape, generator=g)
        theirs_q = hf.apply(q, table)
        ours_q = rotary_rotate(rope, q, positions, fam.vision)
        scale = float(theirs_q.abs().max()) or 1.0
        qk_err = float((theirs_q - ours_q).abs().max()) / scale
        if not qk_err <= F32_QK_TOL:
            return Result(
                "mismatch",
                f"{where}: rotated q (float32): max |error| / max |transformers| = {qk_err:.2e}, with equal cos/sin",
                stats,
            )
        stats["qk_err"] = max(stats["qk_err"], qk_err)
        # bfloat16 against the float64 oracle of transformers' own cos/sin
        qb = q.to(torch.bfloat16)
        got = _per_token(rotary_rotate(rope, qb, positions, fam.vision)).double()
        expected, size = oracle(theirs_v.double().numpy(), which, their_pairs, _per_token(qb).double().numpy())
        ulp = storage_ulp(expected, torch.bfloat16)
        allowed = np.maximum(ulp, 0.5 * ulp + 2.0**-21 * size)
        error = np.abs(got.numpy() - expected)
        if not np.all(error <= allowed):
            i = np.unravel_index(int(np.argmax(error - allowed)), error.shape)
            return Result(
                "mismatch",
                f"{where}: rotated q (bfloat16): {int(np.sum(~(error <= allowed)))} elements "
                f"beyond 1 ulp of the float64 oracle; worst: oracle {float(expected[i]):.6g}, "
                f"rotary {float(got[i]):.6g}",
                stats,
            )
        # the worst error in ulps where the plain 1-ulp bound applies (outputs that do not cancel)
        plain = 2.0**-21 * size <= 0.5 * ulp
        stats["bf16_ulps"] = max(stats["bf16_ulps"], float(np.max(error[plain] / ulp[plain], initial=0.0)))
    return Result("match", "", stats, notes)


def _ranges(values):
    out, start = [], None
    for k, v in enumerate(values):
        if start is None:
            start = v
        if k + 1 == len(values) or values[k + 1] != v + 1:
            out.append(f"{start}" if start == v else f"{start}..{v}")
            start = None
    return ", ".join(out[:6]) + (", ..." if len(out) > 6 else "")


# -------------------------------------------------------------------------------------------------
# a family


@dataclass
class FamilyResult:
    name: str
    state: str
    detail: str
    cases: dict  # label -> Result
    notes: list

    def record(self, fam):
        """The stable part: what the results file keeps."""
        entry = {
            "state": self.state,
            "kind": fam.kind,
            "module": fam.cls.__name__ if fam.cls else None,
            "model_types": fam.model_types,
        }
        if self.detail:
            entry["detail"] = self.detail
        # the pairing rotary read where it compared a case (a refused or unchecked family has none)
        layouts = [
            r.stats["layout"] for r in self.cases.values() if r.state in ("match", "mismatch") and "layout" in r.stats
        ]
        entry["layout"] = layouts[0] if layouts else None
        entry["cases"] = {
            label: (r.state if not r.detail else f"{r.state}: {r.detail}") for label, r in self.cases.items()
        }
        if self.notes:
            entry["notes"] = self.notes
        return entry


def check_family(fam):
    """The family's result: every case's, and the worst of them."""
    if fam.cls is None:
        return FamilyResult(fam.name, "unchecked", fam.note, {}, [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cases, notes = build_cases(fam)
        except Unchecked as e:
            return FamilyResult(fam.name, "unchecked", str(e), {}, [])
        results = {}
        for case in cases:
            try:
                with torch.no_grad():  # some modules' parameters require grad; nothing here needs it
                    results[case.label] = check_case(fam, case)
            except Unchecked as e:
                results[case.label] = Result("unchecked", str(e))
            except Exception as e:  # noqa: BLE001 - one family's surprise must not stop the sweep of the others
                results[case.label] = Result("unchecked", f"the sweep failed: {type(e).__name__}: {_first_line(e)}")
    worst = max(results.values(), key=lambda r: _SEVERITY[r.state]) if results else Result("unchecked", "no case")
    label = next((k for k, r in results.items() if r is worst), "")
    detail = f"{label}: {worst.detail}" if worst.state != "match" else ""
    for r in results.values():
        notes += [n for n in r.notes if n not in notes]
    return FamilyResult(fam.name, worst.state, detail, results, notes)


SWEEP_SECONDS = []  # how long check_all took, for the summary


@functools.cache
def check_all():
    """{name: FamilyResult} for every family, computed once per process. torch runs on one thread
    meanwhile: the tensors are small, and two threads on two shared cores spend most of their time
    waiting for each other (the sweep takes ten times longer)."""
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = {fam.name: check_family(fam) for fam in discover()[0]}
    finally:
        torch.set_num_threads(threads)
    SWEEP_SECONDS.append(time.perf_counter() - start)
    return results


def results_document(results=None):
    """The results file's contents: per family its state, kind, module class, model types, the
    diagnosis of its worst case and every case's state; the families excluded and why."""
    results = results or check_all()
    families, excluded = discover()
    return {
        "transformers": transformers.__version__,
        "excluded": excluded,
        "families": {fam.name: results[fam.name].record(fam) for fam in families},
    }


def comparable(document):
    """The document with every number in its text masked: the states, the structure of each
    diagnosis and the messages are compared; the values in them (torch's float32 theta, which
    its vectorised pow may round differently on another CPU) are not."""
    if isinstance(document, dict):
        return {k: comparable(v) for k, v in document.items()}
    if isinstance(document, list):
        return [comparable(v) for v in document]
    if isinstance(document, str):
        return re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "#", document)
    return document


def count_states(results):
    counts = dict.fromkeys(STATES, 0)
    for r in results.values():
        counts[r.state] += 1
    return counts


def summary_line(results, known_mismatches=()):
    counts = count_states(results)
    new = [n for n, r in results.items() if r.state == "mismatch" and n not in known_mismatches]
    line = (
        f"families: {counts['match']} match, {counts['refused']} refused, "
        f"{counts['mismatch'] - len(new)} known mismatches, {counts['unchecked']} unchecked"
    )
    if new:
        line += f", {len(new)} new mismatches ({', '.join(new)})"
    if SWEEP_SECONDS:
        line += f" (sweep {SWEEP_SECONDS[-1]:.0f} s)"
    return line


def table_lines(results):
    """One line per family: name, kind, state, the numbers over its matching cases (theta bit-equal
    to transformers', worst cos/sin error, worst rotated-q error relative to its largest value,
    worst bfloat16 error in ulps), and the diagnosis."""
    lines = []
    for fam in discover()[0]:
        r = results[fam.name]
        st = [c.stats for c in r.cases.values() if c.state == "match" and c.stats]
        eq = sum(s["theta_equal"] for s in st)
        size = sum(s["theta_size"] for s in st)
        numbers = ""
        if st:
            numbers = (
                f"theta == {eq}/{size}  cos/sin {max(s['matrix_err'] for s in st):.1e}  "
                f"q {max(s['qk_err'] for s in st):.1e}  bf16 {max(s['bf16_ulps'] for s in st):.2f} ulp"
            )
        lines.append(f"{fam.name:28s} {fam.kind:6s} {r.state:9s} {numbers:70s} {r.detail}".rstrip())
    return lines
