"""Replacing a transformers model's RoPE with rotary's, on one model instance.

``rotary.patch(model)`` changes nothing that another model shares: no class, no modeling module
and no global function is touched. It sets instance attributes on the model's own submodules,
the way PyTorch lets one module's ``forward`` differ from its class's:

- each RoPE module (``model.model.rotary_emb``, and every other one the model holds: local and
  global, per layer type, per sub-model) gets a ``forward`` that returns rotary's cos/sin tables
  in the exact shape and order its class returns (checked at patch time against the class's own
  output), and remembers which tensors it returned, for which positions and RoPE;
- each submodule whose method calls the modeling module's ``apply_rotary_pos_emb`` (or an
  ``apply_rotary_pos_emb_interleave`` and the like) by its global name gets that method re-created
  from the same code with one name rebound: a function that hands the rotation to
  :func:`rotary.torch.apply_rotary` when it is given the tables a patched RoPE module just
  returned, and calls the original function otherwise. It is only rebound where, at patch time,
  rotary's rotation equals the original function on rotary's tables.

Tables and rotation come from the same :class:`rotary.Rope`, so a call that takes the original
function (a table sliced by the attention module, say) still computes rotary's angles. Nothing is
changed before every RoPE module of the model is recognised and checked: a family the family sweep
refuses (``rotary.families()``) and a wiring patch does not know raise :class:`rotary.Error`.
"""

import contextlib
import copy
import inspect
import re
import sys
import types
import weakref

from ._errors import invalid
from ._families import families
from ._rope import Rope

__all__ = ["patch", "patched", "unpatch"]

_ANGLE_MODES = ("hf", "exact")
_PATCHES = weakref.WeakKeyDictionary()  # model -> _Patch
# Names of the apply functions a method may call by global name, and the parameters the fast path reads.
_APPLY_NAME = re.compile(r"^apply_rotary_pos_emb\w*$|^apply_rotary_emb$")
_APPLY_PARAMS = ("q", "k", "cos", "sin")
_PROBE_POSITIONS = 48  # small enough that no dynamic or LongRoPE switch happens while probing
_PROBE_TOLERANCE = 2e-5  # float32 rounding of angles below 48 (transformers' angles vs exact ones)
_FAST_DTYPES = ("float32", "float16", "bfloat16")


def _sweep_by_module():
    """{RoPE module class name: sweep record} for every family the sweep knows."""
    return {record["module"]: record for record in families()}


def _model_type(model):
    config = getattr(model, "config", None)
    return getattr(config, "model_type", None) or type(model).__name__


def _looks_like_rope(module, known):
    name = type(module).__name__
    if name in known:
        return True
    has_inv_freq = any(buffer_name.endswith("inv_freq") for buffer_name, _ in module.named_buffers(recurse=False))
    return has_inv_freq or re.search(r"Rotary|Rope|RoPE", name) is not None


# ---- tables: what a patched RoPE module returns ------------------------------------------------------


def _table_layouts():
    """The ways transformers' RoPE modules lay out one column per pair: cat((c, c)) for half-split
    apply functions, repeat_interleave(c, 2) for interleaved ones, c alone."""
    torch = _torch()
    return {
        "cat": lambda c: torch.cat((c, c), dim=-1),
        "repeat": lambda c: torch.repeat_interleave(c, 2, dim=-1),
        "half": lambda c: c,
    }


def _torch():
    import torch

    return torch


def apply_rotary(q, k, positions, rope, *, layout):
    """rotary.torch.apply_rotary (the ``torch.ops.rotary.rotate`` operator), imported on first use
    so that ``import rotary`` does not import torch."""
    from .torch import apply_rotary as rotate

    return rotate(q, k, positions, rope, layout=layout)


class _Record:
    """What a patched RoPE module returned last: the tables (by identity), positions and Rope, with
    the Rope's head_dim read once (a plain int, which torch.compile traces without a break)."""

    def __init__(self, cos, sin, positions, rope, head_dim):
        self.cos, self.sin, self.positions, self.rope, self.head_dim = cos, sin, positions, rope, head_dim


class _RopeSource:
    """rotary's replacement for one RoPE module's forward."""

    def __init__(self, module, signature, ropes, layout):
        self.module_ref = weakref.ref(module)
        self.signature = signature
        self.ropes = ropes  # layer_type (None where the module takes none) -> rotary.Rope
        self.head_dims = {id(rope): rope.head_dim for rope in ropes.values()}
        self.layout = layout  # "cat", "repeat" or "half"
        self.last = None

    def tables(self, x, position_ids, layer_type=None):
        torch = _torch()
        rope = self.ropes.get(layer_type)
        if rope is None:
            raise invalid(
                "layer_type", f"{layer_type!r}: the config gives these layers no RoPE, yet the model asks for one"
            )
        expected = 2 if rope.num_axes == 1 else 3
        ndim = getattr(position_ids, "ndim", expected)
        if ndim != expected or (rope.num_axes > 1 and position_ids.shape[0] != rope.num_axes):
            # A model that hands its RoPE module other position ids than the ones probed at patch
            # time (an M-RoPE module given 4 rows, text positions first, say): no table rotary
            # could return would be the one its class computes.
            raise invalid(
                "position_ids",
                f"{type(self.module_ref()).__name__} was given shape {tuple(position_ids.shape)}; rotary.patch "
                f"serves it for {'(batch, seq)' if expected == 2 else f'({rope.num_axes}, batch, seq)'} only",
            )
        cos, sin = rope.cos_sin(position_ids)
        shape = _table_layouts()[self.layout]
        cos = shape(torch.from_numpy(cos)).to(dtype=x.dtype, device=x.device)
        sin = shape(torch.from_numpy(sin)).to(dtype=x.dtype, device=x.device)
        self.last = _Record(cos, sin, position_ids, rope, self.head_dims.get(id(rope)) or rope.head_dim)
        return cos, sin

    def forward(self, *args, **kwargs):
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = bound.arguments
        return self.tables(arguments["x"], arguments["position_ids"], arguments.get("layer_type"))


def _rope_signature(module):
    """The forward signature of a RoPE module (without self), when patch knows how to serve it:
    (x, position_ids) or (x, position_ids, layer_type)."""
    function = inspect.unwrap(type(module).forward)
    signature = inspect.signature(function)
    names = list(signature.parameters)[1:]
    if names not in (["x", "position_ids"], ["x", "position_ids", "layer_type"]):
        return None
    return signature.replace(parameters=list(signature.parameters.values())[1:])


def _layer_types(module, signature):
    if "layer_type" not in signature.parameters:
        return [None]
    config = getattr(module, "config", None)
    declared = getattr(config, "layer_types", None) or []
    return sorted(set(declared))


def _probe_positions(rope, torch):
    positions = torch.arange(_PROBE_POSITIONS).reshape(1, -1)
    if rope.num_axes > 1:  # one row per axis, each different, as M-RoPE's position_ids are
        positions = torch.stack([positions * (axis + 1) % _PROBE_POSITIONS for axis in range(rope.num_axes)])
    return positions


def _call_original(module, x, positions, layer_type):
    # A copy, so that probing cannot move the module's state (dynamic RoPE's cached frequencies).
    probe = copy.deepcopy(module)
    if layer_type is None:
        return probe(x, positions)
    return probe(x, positions, layer_type)


def _match_layout(module, signature, ropes):
    """The table layout under which rotary's tables equal the module's own output for every layer
    type, or the reason there is none."""
    torch = _torch()
    x = torch.zeros(1, 1, dtype=torch.float32)
    layouts = list(_table_layouts())
    for layer_type, rope in ropes.items():
        positions = _probe_positions(rope, torch)
        theirs = _call_original(module, x, positions, layer_type)
        if not (isinstance(theirs, tuple) and len(theirs) == 2 and all(isinstance(t, torch.Tensor) for t in theirs)):
            return None, "its forward does not return a (cos, sin) pair of tensors"
        cos, sin = rope.cos_sin(positions)
        cos, sin = torch.from_numpy(cos), torch.from_numpy(sin)
        layouts = [
            name
            for name in layouts
            if all(
                shape(ours).shape == table.shape
                and torch.allclose(shape(ours), table.float(), rtol=0, atol=_PROBE_TOLERANCE)
                for ours, table in zip((cos, sin), theirs, strict=True)
                for shape in [_table_layouts()[name]]
            )
        ]
        if not layouts:
            where = f" for layer type {layer_type!r}" if layer_type else ""
            return None, f"its cos/sin{where} are not rotary's tables in any layout patch knows"
    return layouts[0], ""


# ---- the rotation: the apply function seen by a patched method --------------------------------------


def _apply_signature(function):
    """The signature of an apply function whose first parameters are (q, k, cos, sin), else None."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None
    names = list(signature.parameters)
    if tuple(names[:4]) != _APPLY_PARAMS:
        return None
    if any(name not in ("unsqueeze_dim", "position_ids") for name in names[4:]):
        return None
    return signature


def _fast_rotation(record, q, k, cos, sin, unsqueeze_dim):
    """apply_rotary on q and k when cos and sin are the tables `record` holds, else None."""
    torch = _torch()
    if record is None or cos is not record.cos or sin is not record.sin:
        return None
    head_dim = record.head_dim
    layout = {1: "bhsd", 2: "bshd"}.get(unsqueeze_dim)
    if layout is None or not isinstance(q, torch.Tensor) or not isinstance(k, torch.Tensor):
        return None
    if q.ndim != 4 or k.ndim != 4 or q.shape[-1] != head_dim or k.shape[-1] != head_dim:
        return None
    if str(q.dtype).replace("torch.", "") not in _FAST_DTYPES or q.dtype != k.dtype or q.dtype != cos.dtype:
        return None
    if q.stride(-1) != 1 or k.stride(-1) != 1:  # rotary never copies; the tables path handles these
        return None
    return apply_rotary(q, k, record.positions, record.rope, layout=layout)


def _dispatcher(original, signature, sources):
    """The function a patched method calls instead of `original`: rotary's rotation on the tables
    of `sources` (the RoPE sources whose tables it was checked on), `original` on anything else."""

    def apply(*args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            return original(*args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        unsqueeze_dim = a.get("unsqueeze_dim", 1)
        for source in sources:
            out = _fast_rotation(source.last, a["q"], a["k"], a["cos"], a["sin"], unsqueeze_dim)
            if out is not None:
                return out
        return original(*args, **kwargs)

    apply.__name__ = getattr(original, "__name__", "apply_rotary_pos_emb")
    apply.__wrapped__ = original
    return apply


def _fast_path_agrees(original, signature, source):
    """Whether rotary's rotation equals `original` on the tables `source` returns, for q and k in
    (batch, heads, seq, head_dim) with a second batch row at other positions."""
    torch = _torch()
    for layer_type, rope in source.ropes.items():
        positions = _probe_positions(rope, torch)
        if rope.num_axes == 1:
            positions = torch.cat([positions, positions + 1000])
        else:
            positions = torch.cat([positions, positions + 1000], dim=1)
        x = torch.zeros(1, 1, dtype=torch.float32)
        cos, sin = source.tables(x, positions, layer_type)
        generator = torch.Generator().manual_seed(0)
        q = torch.randn(2, 3, _PROBE_POSITIONS, rope.head_dim, generator=generator)
        k = torch.randn(2, 1, _PROBE_POSITIONS, rope.head_dim, generator=generator)
        try:
            theirs = original(q, k, cos, sin)
            ours = _fast_rotation(source.last, q, k, cos, sin, 1)
        except (RuntimeError, TypeError, ValueError, IndexError):  # other shape rules than (b, h, s, d)
            return False
        finally:
            source.last = None
        if ours is None or not isinstance(theirs, tuple) or len(theirs) != 2:
            return False
        if not all(
            isinstance(t, torch.Tensor) and t.shape == o.shape and torch.allclose(o, t, rtol=1e-5, atol=1e-5)
            for o, t in zip(ours, theirs, strict=True)
        ):
            return False
    return True


# ---- re-creating methods with one global name rebound ----------------------------------------------


def _apply_names(function):
    """The apply functions `function` calls by global name: {name: function}."""
    code_names = function.__code__.co_names
    return {
        name: function.__globals__[name]
        for name in code_names
        if _APPLY_NAME.match(name) and callable(function.__globals__.get(name))
    }


def _rebind(function, replacements):
    """`function` re-created with `replacements` in its globals; for a decorated function (its
    ``__wrapped__`` held in a closure cell, as functools.wraps decorators do), the decorator's
    wrapper re-created around the rebound inner function. None when the wiring is not that."""
    if any(name in function.__code__.co_names for name in replacements):
        scope = _rebound_module(function.__globals__, replacements).__dict__
        return _copy_function(function, scope, function.__closure__)
    inner = getattr(function, "__wrapped__", None)
    if inner is None or not function.__closure__:
        return None
    rebound_inner = _rebind(inner, replacements)
    if rebound_inner is None:
        return None
    cells = [types.CellType(rebound_inner) if _cell_holds(c, inner) else c for c in function.__closure__]
    if not any(_cell_holds(c, inner) for c in function.__closure__):
        return None
    wrapper = _copy_function(function, function.__globals__, tuple(cells))
    wrapper.__wrapped__ = rebound_inner
    return wrapper


_REBOUND_MODULES = weakref.WeakValueDictionary()  # name -> module, for the ones in sys.modules


def _rebound_module(scope, replacements):
    """A module holding a copy of `scope` (a modeling module's globals) with `replacements`, under a
    name of its own in sys.modules: torch.compile reads a frame's globals through the module its
    ``__name__`` names, which must be this copy, not the modeling module with the originals."""
    name = f"rotary._patched_{len(_REBOUND_MODULES)}_{scope.get('__name__', 'module').replace('.', '_')}"
    while name in sys.modules:
        name += "_"
    module = types.ModuleType(name)
    module.__dict__.update(scope)
    module.__dict__.update(replacements)
    module.__name__ = name
    sys.modules[name] = module
    _REBOUND_MODULES[name] = module
    return module


def _forget_rebound_modules(functions):
    for function in functions:
        name = function.__globals__.get("__name__", "")
        if name in _REBOUND_MODULES:
            sys.modules.pop(name, None)


def _cell_holds(cell, value):
    try:
        return cell.cell_contents is value
    except ValueError:  # an empty cell
        return False


def _copy_function(function, scope, closure):
    # A code object of its own: torch.compile keeps its compiled frames per code object, and the
    # ones compiled for the class's function refer to names in the modeling module's globals.
    code = function.__code__.replace()
    copied = types.FunctionType(code, scope, function.__name__, function.__defaults__, closure)
    copied.__kwdefaults__ = function.__kwdefaults__
    copied.__dict__.update(function.__dict__)
    copied.__qualname__ = function.__qualname__
    copied.__module__ = function.__module__
    copied.__doc__ = function.__doc__
    return copied


def _methods_calling_apply(module_type):
    """{method name: {apply name: apply function}} for the methods of `module_type` (its class
    and bases) that call an apply function by global name."""
    found = {}
    for name in dir(module_type):
        attribute = inspect.getattr_static(module_type, name, None)
        if not isinstance(attribute, types.FunctionType):
            continue
        names = {}
        function = attribute
        while function is not None:
            names.update(_apply_names(function))
            function = getattr(function, "__wrapped__", None)
        if names:
            found[name] = (attribute, names)
    return found


# ---- planning, applying and undoing -----------------------------------------------------------------


class _Patch:
    def __init__(self, angle_mode):
        self.angle_mode = angle_mode
        self.saved = []  # (module, attribute name, previous instance value or _ABSENT)
        self.sources = []
        self.rerouted = []  # (qualified module name, method name, apply name)


_ABSENT = object()


def _refuse(model, message):
    return invalid("model", f"model_type '{_model_type(model)}': {message}")


def _plan_sources(model, angle_mode, keep_vision):
    """{id(module): (module, _RopeSource)} for every RoPE module of `model`; rotary.Error for one
    that the sweep refuses or that patch does not recognise."""
    sweep = _sweep_by_module()
    planned = {}
    for path, module in model.named_modules():
        if not _looks_like_rope(module, sweep) or id(module) in planned:
            continue
        name = type(module).__name__
        record = sweep.get(name)
        where = f"{path or 'model'} ({name})"
        if record is None:
            raise _refuse(
                model, f"{where} computes a RoPE that the family sweep does not cover; patch does not replace it"
            )
        if record["state"] != "match":
            raise _refuse(model, f"{where}: rotary refuses the '{record['family']}' family: {record['detail']}")
        if record["kind"] != "text":
            if keep_vision:
                continue
            raise _refuse(
                model,
                f"{where} is a vision tower's 2D RoPE, which patch does not replace; "
                "pass keep_vision=True to patch the rest and keep transformers' RoPE there",
            )
        planned[id(module)] = (module, _plan_source(model, module, where, angle_mode))
    if not planned:
        raise _refuse(model, "no RoPE module found (patch replaces modules such as model.model.rotary_emb)")
    return planned


def _plan_source(model, module, where, angle_mode):
    signature = _rope_signature(module)
    if signature is None:
        raise _refuse(model, f"{where}: its forward is not (x, position_ids[, layer_type]); patch does not know it")
    layer_types = _layer_types(module, signature)
    if not layer_types:
        raise _refuse(model, f"{where}: takes a layer_type but its config lists no layer_types")
    config = getattr(module, "config", None)
    if config is None:
        raise _refuse(model, f"{where}: rotary cannot read its config: the module keeps none")
    ropes = {}
    for layer_type in layer_types:
        try:
            ropes[layer_type] = Rope(config, angle_mode, layer_type=layer_type)
        except ValueError as error:  # rotary.Error, naming the field
            if layer_type is not None and "use no RoPE" in str(error):
                continue  # layers of this type never rotate; the module is not asked for them
            raise _refuse(model, f"{where}: rotary cannot read its config: {error}") from None
    if not ropes:
        raise _refuse(model, f"{where}: none of its layer types uses a RoPE")
    layout, why = _match_layout(module, signature, ropes)
    if layout is None:
        raise _refuse(model, f"{where}: {why}")
    return _RopeSource(module, signature, ropes, layout)


def _plan_reroutes(model, sources):
    """[(module path, module, method name, rebound function, apply name)] for every method that
    calls an apply function on which rotary's rotation was checked to agree."""
    agreed = {}  # id(apply function) -> dispatcher or None
    plans = []
    for path, module in model.named_modules():
        for method_name, (function, names) in _methods_calling_apply(type(module)).items():
            replacements = {}
            for apply_name, original in names.items():
                key = id(original)
                if key not in agreed:
                    agreed[key] = _checked_dispatcher(original, sources)
                if agreed[key] is not None:
                    replacements[apply_name] = agreed[key]
            if not replacements:
                continue
            rebound = _rebind(function, replacements)
            if rebound is not None:
                plans.append((path, module, method_name, rebound, sorted(replacements)))
    return plans


def _checked_dispatcher(original, sources):
    signature = _apply_signature(original)
    if signature is None:
        return None
    agreeing = [source for source in sources if _fast_path_agrees(original, signature, source)]
    return _dispatcher(original, signature, agreeing) if agreeing else None


def _set_instance_attribute(patch_state, module, name, value):
    patch_state.saved.append((module, name, module.__dict__.get(name, _ABSENT)))
    object.__setattr__(module, name, value)


def _check_no_instance_methods(model, modules_and_names):
    for module, name in modules_and_names:
        if name in module.__dict__:
            raise _refuse(
                model,
                f"{type(module).__name__}.{name} is already replaced on this instance (a hook?); "
                "patch would hide it, so it refuses",
            )


def patch(model, *, angle_mode="hf", keep_vision=False):
    """Replaces the RoPE of one transformers model with rotary's, on this instance only.

    Parameters
    ----------
    model : torch.nn.Module
        A transformers model (``AutoModelForCausalLM.from_pretrained(...)`` and the like). Other
        instances of its class, its class and its modeling module are left as they are.
    angle_mode : {"hf", "exact"}
        ``"hf"``: transformers' float32 angles (float32(position) * theta), for results that
        match the unpatched model to float32 rounding. ``"exact"``: the angle of the exact product
        reduced in float64 and cos/sin rounded once, which stays accurate at long positions where
        float32 angles lose digits (see :class:`rotary.Rope`).
    keep_vision : bool
        A vision tower's 2D RoPE is not replaced; by default a model that has one is refused.
        With True, its vision towers keep transformers' RoPE and the rest is patched.

    Returns
    -------
    model
        The same object, patched.

    Raises
    ------
    rotary.Error
        Before anything is changed: for a model already patched (call :func:`unpatch` first), a
        RoPE family the family sweep refuses (its reason included, see :func:`rotary.families`),
        a RoPE module patch does not recognise, or a model without one.

    Notes
    -----
    The patched model's RoPE modules return rotary's cos/sin tables, and the attention modules
    that call transformers' ``apply_rotary_pos_emb`` by name rotate through
    :func:`rotary.torch.apply_rotary` (where rotary's rotation was checked to equal the family's
    function on rotary's tables; elsewhere the family's own function rotates by rotary's tables).
    Positions are what the model gives its RoPE module: ``generate()``'s cache positions and the
    position ids it derives from a left-padded attention_mask. ``copy.deepcopy`` and pickling of a
    patched model are not supported: unpatch first.
    """
    if angle_mode not in _ANGLE_MODES:
        raise invalid("angle_mode", f"expected one of {_ANGLE_MODES}, got {angle_mode!r}")
    torch = _torch()
    if not isinstance(model, torch.nn.Module):
        raise invalid("model", f"expected a torch.nn.Module (a transformers model), got {type(model).__name__}")
    if model in _PATCHES:
        raise _refuse(model, "already patched; call rotary.unpatch(model) first")
    planned = _plan_sources(model, angle_mode, keep_vision)
    sources = [source for _, source in planned.values()]
    reroutes = _plan_reroutes(model, sources)
    try:
        _check_no_instance_methods(
            model,
            [(module, "forward") for module, _ in planned.values()] + [(m, name) for _, m, name, _, _ in reroutes],
        )
    except ValueError:
        _forget_rebound_modules(_unwrapped(function for *_, function, _ in reroutes))
        raise
    state = _Patch(angle_mode)
    state.sources = sources
    for module, source in planned.values():
        # rotary computes the tables on the host (NumPy): under torch.compile, one deliberate graph
        # break per RoPE module call; the rotation itself is a torch.library operator.
        _set_instance_attribute(state, module, "forward", torch.compiler.disable(source.forward))
    for path, module, method_name, function, apply_names in reroutes:
        _set_instance_attribute(state, module, method_name, types.MethodType(function, module))
        state.rerouted.append((path, method_name, apply_names))
    _PATCHES[model] = state
    return model


def unpatch(model):
    """Undoes :func:`patch`: every attribute patch set is removed, and an instance attribute it
    replaced is put back, the same object.

    Returns
    -------
    model
        The same object, as it was before :func:`patch`.

    Raises
    ------
    rotary.Error
        If the model is not patched.
    """
    state = _PATCHES.pop(model, None)
    if state is None:
        raise _refuse(model, "not patched by rotary.patch")
    _forget_rebound_modules(_rebound_functions(state))
    for module, name, previous in reversed(state.saved):
        if previous is _ABSENT:
            object.__delattr__(module, name)
        else:
            object.__setattr__(module, name, previous)
    return model


def _rebound_functions(state):
    """The re-created functions (and the inner ones of re-created wrappers) patch set on `state`."""
    return _unwrapped(getattr(module.__dict__.get(name), "__func__", None) for module, name, _ in state.saved)


def _unwrapped(functions):
    found = []
    for function in functions:
        while isinstance(function, types.FunctionType):
            found.append(function)
            function = getattr(function, "__wrapped__", None)
    return found


@contextlib.contextmanager
def patched(model, **options):
    """``with rotary.patched(model, angle_mode=...):`` patches the model for the block and unpatches
    it on the way out, an exception included. Options as :func:`patch`."""
    patch(model, **options)
    try:
        yield model
    finally:
        unpatch(model)


def _describe(model):
    """What patch changed on `model` (for tests and debugging): the RoPE modules it serves with
    their table layout, and the methods whose apply function now reaches rotary's rotation."""
    state = _PATCHES.get(model)
    if state is None:
        return None
    return {
        "angle_mode": state.angle_mode,
        "sources": [(type(s.module_ref()).__name__, s.layout, sorted(map(str, s.ropes))) for s in state.sources],
        "rerouted": list(state.rerouted),
    }
