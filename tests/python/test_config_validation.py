"""Config validation against transformers 5.24's own: whatever transformers refuses, rotary refuses.

Each case is one config dict, given unchanged to the transformers config class of its model type
and to ``rotary.config_from_dict``. Constructing the class is the call that validates in 5.24: its
strict dataclass checks its typed fields (``head_dim: int``, ...) and runs ``validate_rope``, which
raises on a missing required rope key and on an odd head rotated whole, and only logs a warning for
unknown keys, wrong types, out-of-range values and unknown rope types.

The property checked for every case: transformers rejects => rotary rejects with a rotary.Error
naming the field by its JSON path (``rope_scaling.factor``); transformers accepts => rotary accepts,
or refuses naming the field (it is stricter where transformers only logs, see src/config.cc). When
both accept, both read the same rope_type and base. The hand-written cases also state both
verdicts, so the table shows what each library does; the generated ones (every key of each rope
type removed, given the wrong type, or a non-finite number) and a Hypothesis search state only the
property.
"""

import copy

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

import rotary
from hf_reference import family_of, hf_config_kwargs, load_records

LLAMA = {
    "model_type": "llama",
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "max_position_embeddings": 131072,
    "rope_theta": 500000.0,
}
PHI3 = {
    "model_type": "phi3",
    "hidden_size": 3072,
    "num_attention_heads": 32,
    "max_position_embeddings": 131072,
    "original_max_position_embeddings": 4096,
    "rope_theta": 10000.0,
}

# One rope dict per rope type, the shape real configs give them (Llama 3.1, Gemma 3, InternLM2.5,
# Qwen2.5, DeepSeek-V3, gpt-oss, Phi-3.5).
SCALING = {
    "linear": (LLAMA, {"rope_type": "linear", "factor": 8.0}),
    "dynamic": (LLAMA, {"type": "dynamic", "factor": 2.0}),
    "yarn": (
        LLAMA,
        {
            "rope_type": "yarn",
            "factor": 4.0,
            "original_max_position_embeddings": 32768,
            "beta_fast": 32.0,
            "beta_slow": 1.0,
            "mscale": 1.0,
            "mscale_all_dim": 1.0,
            "attention_factor": 1.2,
            "truncate": False,
        },
    ),
    "longrope": (PHI3, {"type": "longrope", "short_factor": [1.0] * 48, "long_factor": [1.5] * 48}),
    "llama3": (
        LLAMA,
        {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        },
    ),
}


def scaled(name, /, **changes):
    """The base config of rope type `name`, `changes` applied to its rope_scaling (DROP: remove)."""
    base, scaling = SCALING[name]
    scaling = dict(copy.deepcopy(scaling), **changes)
    return dict(copy.deepcopy(base), rope_scaling={k: v for k, v in scaling.items() if v is not DROP})


def top(base=LLAMA, **changes):
    config = dict(copy.deepcopy(base), **changes)
    return {k: v for k, v in config.items() if v is not DROP}


DROP = object()
NAN, INF = float("nan"), float("inf")
R, A = "rejects", "accepts"

# (id, config, transformers' verdict, the JSON path rotary's error names, or None: rotary accepts)
CASES = [
    # Valid, every rope type.
    ("default", top(), A, None),
    *[(f"{t}-valid", scaled(t), A, None) for t in SCALING],
    ("proportional", top(rope_scaling={"rope_type": "proportional", "partial_rotary_factor": 0.25}), A, None),
    ("llama4-equal-bands", scaled("llama3", low_freq_factor=1.0, high_freq_factor=1.0), A, None),
    ("yarn-null-factor-derived", scaled("yarn", factor=None), A, None),
    (
        "rope_parameters-v5",
        top(rope_theta=DROP, rope_parameters={"rope_type": "linear", "rope_theta": 1e6, "factor": 4.0}),
        A,
        None,
    ),
    (
        "ministral3-read-past",
        top(
            rope_parameters={
                "type": "yarn",
                "rope_type": "yarn",
                "rope_theta": 1e6,
                "factor": 16.0,
                "original_max_position_embeddings": 8192,
                "max_position_embeddings": 131072,
                "llama_4_scaling_beta": 0.1,
            }
        ),
        A,
        None,
    ),
    (
        "rope_scaling-wins",
        top(rope_parameters={"rope_type": "default"}, rope_scaling={"rope_type": "linear", "factor": 4.0}),
        A,
        None,
    ),
    (
        "phi3-yarn-is-longrope",
        top(PHI3, rope_scaling={"type": "yarn", "short_factor": [1.0] * 48, "long_factor": [1.0] * 48}),
        A,
        None,
    ),
    # Required keys (transformers: KeyError).
    ("yarn-without-factor", scaled("yarn", factor=DROP), R, "rope_scaling.factor"),
    ("linear-without-factor", scaled("linear", factor=DROP), R, "rope_scaling.factor"),
    ("dynamic-without-factor", scaled("dynamic", factor=DROP), R, "rope_scaling.factor"),
    ("llama3-without-low", scaled("llama3", low_freq_factor=DROP), R, "rope_scaling.low_freq_factor"),
    ("longrope-without-long", scaled("longrope", long_factor=DROP), R, "rope_scaling.long_factor"),
    (
        "phi3-yarn-without-lists",
        top(PHI3, rope_scaling={"type": "yarn", "factor": 4.0}),
        R,
        "rope_scaling.short_factor",
    ),
    # Wrong types.
    ("rope_type-number", top(rope_scaling={"rope_type": 5, "factor": 2.0}), A, "rope_scaling.rope_type"),
    ("type-number", top(rope_scaling={"type": 5, "factor": 2.0}), A, "rope_scaling.type"),
    ("rope_type-list", top(rope_parameters={"rope_type": ["linear"], "factor": 2.0}), A, "rope_parameters.rope_type"),
    ("rope_type-unknown", top(rope_scaling={"rope_type": "ntk-by-parts", "factor": 2.0}), A, "rope_scaling.rope_type"),
    ("factor-string", scaled("linear", factor="8"), A, "rope_scaling.factor"),
    ("beta-string", scaled("yarn", beta_slow="1"), R, "rope_scaling.beta_slow"),
    (
        "original-string",
        scaled("yarn", original_max_position_embeddings="4096"),
        R,
        "rope_scaling.original_max_position_embeddings",
    ),
    ("short_factor-null", scaled("longrope", short_factor=None), R, "rope_scaling.short_factor"),
    ("short_factor-strings", scaled("longrope", short_factor=["1"] * 48), R, "rope_scaling.short_factor[0]"),
    ("max_position-float", top(max_position_embeddings=8192.0), R, "max_position_embeddings"),
    ("head_dim-float", top(head_dim=128.0), R, "head_dim"),
    ("original-float-in-dict", scaled("yarn", original_max_position_embeddings=32768.0), A, None),
    ("truncate-string", scaled("yarn", truncate="no"), A, "rope_scaling.truncate"),
    # Out of range (transformers logs these, or nothing).
    ("factor-below-1", scaled("linear", factor=0.5), A, "rope_scaling.factor"),
    ("dynamic-factor-0", scaled("dynamic", factor=0.0), A, "rope_scaling.factor"),
    ("beta-negative", scaled("yarn", beta_fast=-1.0), A, "rope_scaling.beta_fast"),
    ("betas-reversed", scaled("yarn", beta_fast=1.0, beta_slow=32.0), A, "rope_scaling.beta_fast"),
    ("attention_factor-negative", scaled("yarn", attention_factor=-1.0), A, "rope_scaling.attention_factor"),
    (
        "llama3-bands-reversed",
        scaled("llama3", low_freq_factor=4.0, high_freq_factor=1.0),
        A,
        "rope_scaling.high_freq_factor",
    ),
    (
        "longrope-short-list-llama",
        top(rope_scaling=dict(SCALING["longrope"][1], short_factor=[1.0] * 10), original_max_position_embeddings=4096),
        A,
        "rope_scaling.short_factor",
    ),
    ("longrope-short-list-phi3", scaled("longrope", short_factor=[1.0] * 10), R, "rope_scaling.short_factor"),
    ("longrope-zero-entry", scaled("longrope", long_factor=[0.0] * 48), A, "rope_scaling.long_factor"),
    ("rope_theta-1", top(rope_theta=1.0), A, "rope_theta"),
    ("partial-above-1", top(partial_rotary_factor=1.5), A, "partial_rotary_factor"),
    # Unknown keys (transformers logs them; a model's own code may read them).
    ("unknown-key", scaled("linear", foo=1), A, "rope_scaling.foo"),
    ("hunyuan-alpha", scaled("dynamic", alpha=1000.0), A, "rope_scaling.alpha"),
    ("phimoe-short_mscale", scaled("longrope", short_mscale=1.24), A, "rope_scaling.short_mscale"),
    # Non-finite numbers, from Python (JSON cannot hold them).
    ("rope_theta-nan", top(rope_theta=NAN), A, "rope_theta"),
    (
        "rope_theta-inf-in-dict",
        top(rope_theta=DROP, rope_parameters={"rope_type": "default", "rope_theta": INF}),
        A,
        "rope_parameters.rope_theta",
    ),
    ("factor-inf", scaled("linear", factor=INF), A, "rope_scaling.factor"),
    ("long_factor-nan", scaled("longrope", long_factor=[1.0] * 47 + [NAN]), A, "rope_scaling.long_factor[47]"),
    ("unread-field-inf", top(time_step_limit=[0.0, INF]), A, None),
    # Head sizes.
    ("derived-head-odd", top(hidden_size=4128, num_attention_heads=32), R, "hidden_size"),
    ("derived-head-fraction", top(hidden_size=4096, num_attention_heads=30), R, "hidden_size"),
    ("head_dim-odd", top(head_dim=129), R, "head_dim"),
    ("head_dim-tiny-odd", top(head_dim=3), A, "head_dim"),
    ("head_dim-huge", top(head_dim=1_000_000_000), A, "head_dim"),
    (
        "text_config-path",
        {
            "model_type": "qwen2_5_vl",
            "text_config": {
                "model_type": "qwen2_5_vl_text",
                "hidden_size": 3584,
                "num_attention_heads": 28,
                "rope_scaling": {"type": "yarn", "original_max_position_embeddings": 4096},
            },
        },
        R,
        "text_config.rope_scaling.factor",
    ),
]

# transformers bugs, where rotary deliberately differs: (id, config, why).
TRANSFORMERS_BUGS = [
    (
        "phi3-su",
        top(PHI3, rope_scaling={"type": "su", "short_factor": [1.0] * 48, "long_factor": [1.0] * 48}),
        (
            "5.24's Phi3Config renames 'su' to 'longrope' only after standardising the rope dict, so its "
            "own longrope validation misses original_max_position_embeddings (KeyError); 'su' is "
            "LongRoPE, and rotary reads it so"
        ),
    ),
]


def transformers_config(config):
    """transformers' config object for `config`, or the exception constructing it raised."""
    kwargs = copy.deepcopy(config)
    cls = CONFIG_MAPPING[kwargs.pop("model_type")]
    try:
        return cls(**kwargs)
    except Exception as e:  # noqa: BLE001 - KeyError, ValueError, TypeError, StrictDataclass*ValidationError, ...
        return e


def rotary_configs(config):
    """{layer type or None: rotary's config}, or the rotary.Error reading one raised."""
    try:
        return {t: rotary.config_from_dict(config, t) for t in rotary.rope_layer_types(config) or [None]}
    except rotary.Error as e:
        return e


def hf_rope_parameters(hf):
    """{layer type or None: transformers' standardised rope dict} (the text config's)."""
    text = hf.get_text_config(decoder=True)
    try:
        params = text.rope_parameters
    except AttributeError:  # GPT-J keeps its rotary_dim outside any rope dict
        return {}
    nested = text.nested_rope_parameter_keys(params)
    return {k: params[k] for k in nested} if nested else {None: params}


def check(config):
    """The differential property for one config; returns (transformers verdict, rotary's error)."""
    hf = transformers_config(config)
    ours = rotary_configs(config)
    assert not isinstance(ours, Exception) or isinstance(ours, rotary.Error)
    if isinstance(hf, Exception):
        assert isinstance(ours, rotary.Error), f"transformers rejects ({hf!r}); rotary accepts"
    if isinstance(ours, rotary.Error):
        assert ours.argument, f"rotary's error names no field: {ours}"
        return (R if isinstance(hf, Exception) else A), ours
    if not isinstance(hf, Exception):
        theirs = hf_rope_parameters(hf)
        for layer_type in set(theirs) & set(ours):
            params, c = theirs[layer_type], ours[layer_type]
            if params is None:  # a layer type without RoPE
                continue
            hf_type = params.get("rope_type")
            assert isinstance(hf_type, str) and c.rope_type == {"mrope": "default"}.get(hf_type, hf_type)
            assert c.rope_theta == params["rope_theta"]
    return (R if isinstance(hf, Exception) else A), None


@pytest.mark.parametrize("config, hf_verdict, field", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_case(config, hf_verdict, field):
    verdict, error = check(config)
    assert verdict == hf_verdict, f"transformers {verdict}"
    assert (error.argument if error else None) == field, str(error)


@pytest.mark.parametrize("config, why", [c[1:] for c in TRANSFORMERS_BUGS], ids=[c[0] for c in TRANSFORMERS_BUGS])
def test_transformers_bugs_rotary_does_not_copy(config, why):
    assert isinstance(transformers_config(config), Exception), why
    assert not isinstance(rotary_configs(config), Exception)


def test_the_table_covers_both_verdicts():
    # The property must have been tested on cases transformers rejects, and rotary's extra strictness
    # shown on cases transformers accepts.
    verdicts = [(hf, field is not None) for _, _, hf, field in CASES]
    assert verdicts.count((R, True)) >= 15
    assert verdicts.count((A, True)) >= 20
    assert verdicts.count((A, False)) >= 10


def _records():
    out = []
    for name, record in load_records():
        family, skip = family_of(record)
        if skip is None:
            out.append(pytest.param(name, family, record, id=name))
    return out


@pytest.mark.parametrize("name, family, record", _records())
def test_every_bundled_real_config_is_accepted_by_both(name, family, record):
    # hf_config_kwargs gives transformers "longrope" for Phi-3's "su" (the bug above).
    hf = transformers_config(dict(hf_config_kwargs(record), model_type=family))
    assert not isinstance(hf, Exception), hf
    ours = rotary_configs(record["config"])
    assert not isinstance(ours, Exception), ours


# ---- generated: each key of each rope type removed, mistyped, or not finite ---------------------

WRONG = {"string": "1", "list": [1.0], "object": {}, "true": True, "null": None}
# The fields an error may name when a top-level field changes (head_dim is derived from the two).
_SIZES = {"hidden_size", "num_attention_heads", "head_dim"}


def _generated():
    """(id, config, the paths a rotary error may name)."""
    cases = []
    for rope_type, (_, scaling) in SCALING.items():
        for key, value in scaling.items():
            # Retyping rope_type itself may leave another of the new type's keys missing.
            named = (
                (lambda a: a.startswith("rope_scaling."))
                if key in ("rope_type", "type")
                else (lambda a, key=key: a.split("[")[0] == f"rope_scaling.{key}")
            )
            variants = {"removed": DROP, **WRONG}
            if isinstance(value, float):
                variants.update({"nan": NAN, "inf": INF, "-inf": -INF})
            for kind, wrong in variants.items():
                cases.append((f"{rope_type}-{key}-{kind}", scaled(rope_type, **{key: wrong}), named))
    for key in ("hidden_size", "num_attention_heads", "max_position_embeddings", "rope_theta"):
        allowed = _SIZES if key in _SIZES else {key}
        for kind, wrong in dict(WRONG, removed=DROP, negative=-2, zero=0, nan=NAN).items():
            cases.append((f"{key}-{kind}", top(**{key: wrong}), lambda a, allowed=allowed: a in allowed))
    return cases


_GENERATED = _generated()


@pytest.mark.parametrize("config, named", [c[1:] for c in _GENERATED], ids=[c[0] for c in _GENERATED])
def test_generated(config, named):
    _, error = check(config)
    assert error is None or named(error.argument), str(error)


# ---- hypothesis: any JSON value in any field ----------------------------------------------------

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(SCALING)), st.data())
def test_any_value_in_any_field(rope_type, data):
    config = scaled(rope_type)
    scaling = config["rope_scaling"]
    target = config if data.draw(st.booleans()) else scaling
    key = data.draw(
        st.sampled_from(
            sorted(k for k in target if k not in ("model_type", "rope_scaling"))
            + ["foo", "factor", "original_max_position_embeddings"]
        )
    )
    target[key] = data.draw(_JSON)
    # Phi-3's "su": the transformers bug above.
    assume(not (config["model_type"] == "phi3" and "su" in (scaling.get("type"), scaling.get("rope_type"))))
    _, error = check(config)
    if error is not None:
        # The path names a field of this config, or head_dim when it is derived.
        assert error.argument.split(".")[0].split("[")[0] in set(config) | {"head_dim"}, str(error)
