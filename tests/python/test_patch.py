"""rotary.patch / unpatch / patched on real transformers models, built offline from each family's
default config at toy sizes (2 layers, hidden 64, 4 heads, vocabulary 128, seeded weights).

Every family the sweep marks "match" (text) is either run here (greedy generate and logits against
the same model unpatched, with a left-padded batch and generate's DynamicCache; a second instance
of the class untouched; unpatch restoring the very objects) or listed below with the reason it is
not. Expected values come from transformers' own unpatched model or from the RoPE formula written
out in float64, never from rotary. Runtime: about 2 minutes on 2 shared cores (121 tests).
"""

import contextlib
import copy
import warnings

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import rotary  # noqa: E402
from rotary import _patch  # noqa: E402
from test_patch_multimodal import MROPE_FAMILIES  # noqa: E402

SMALL = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=128,
    head_dim=16,
    pad_token_id=0,
    # MoE families: few small experts keep the toy model fast (ignored by dense configs).
    num_experts=4,
    num_local_experts=4,
    n_routed_experts=4,
    num_experts_per_tok=2,
    moe_intermediate_size=32,
)
# Multi-head latent attention (DeepSeek-style) needs as many key/value heads as query heads.
OVERRIDES = {
    name: {"num_key_value_heads": 4}
    for name in ("axk2", "deepseek_v32", "glm4_moe_lite", "glm_moe_dsa", "minicpm3", "mistral_large4")
}
OVERRIDES["zaya"] = {"num_experts_per_tok": 1}
OVERRIDES["flint"] = {"layer_types": ["full_attention", "sliding_attention"]}  # only sliding layers rotate
CONFIG_NAMES = transformers.models.auto.configuration_auto.CONFIG_MAPPING_NAMES

# Families whose toy model this test cannot build or drive from a default config offline, and why.
NOT_BUILT = {
    "bailing_hybrid": "the default config's layer pattern needs more than 2 layers",
    "bamba": "the toy model's layers are all Mamba layers: generate's cache has no attention layer",
    "dory": "its default config does not run at toy sizes (attention shapes)",
    "lfm3": "the toy model's layers are all linear-attention layers: generate's cache has no attention layer",
    "muse_glimmer_assistant": "its forward needs noise_embeds and context_hidden_states, not input_ids alone",
    "qwen3_next": "the toy model's layers are all linear-attention layers: generate's cache has no attention layer",
    "blt": "a byte-patcher model of four sub-models whose default sizes the test does not shrink",
    "chameleon": "its default config carries a VQ image tokenizer (vq_config) the test does not shrink",
    "cohere_compass": "an embedding model built around sub-configs the test does not shrink",
    "csm": "a speech model with a depth decoder and a codec (sub-configs) the test does not shrink",
    "dbrx": "its attention sizes live in attn_config/ffn_config sub-configs",
    "deepseek_ocr2": "no AutoModel class for its text config",
    "dia": "no AutoModel class for its decoder config",
    "dots1": "its default MoE config does not build at toy sizes",
    "dots3_note.audio": "an audio encoder inside a multimodal config the test does not shrink",
    "emu3": "no AutoModel class for its text config",
    "esm": "the default config uses absolute position embeddings (no RoPE module is built)",
    "esmc": "it refuses grouped-query attention at toy sizes",
    "evolla": "a protein encoder sub-config the test does not shrink",
    "evolla.saprot": "a protein encoder sub-config the test does not shrink",
    "gemma3n": "its default per-layer cache sharing needs more layers than 2",
    "gradium_phonon_tts": "its flow head's sizes are tied to the default backbone",
    "granite4_vision": "no AutoModel class for its text config",
    "granitemoehybrid": "the toy model's 2 layers are all Mamba layers (no attention, no RoPE)",
    "idefics": "vision and perceiver sub-configs the test does not shrink",
    "kyutai_speech_to_text": "a codec sub-config the test does not shrink",
    "lasr": "an encoder sub-config the test does not shrink",
    "lfm2_moe": "its default layer pattern needs more than 2 layers",
    "mimi": "an audio codec whose convolutions need the default sizes",
    "mllama": "no AutoModel class for its text config",
    "moonshine_streaming": "an encoder sub-config the test does not shrink",
    "moshi": "audio encoder and depth decoder sub-configs the test does not shrink",
    "muse_spark": "its default config allocates 32 GiB",
    "nemotron3_5_transcribe": "its language model (nemotron_h) has no attention layer at toy sizes",
    "nemotron3_diarization": "audio sub-configs the test does not shrink",
    "neucodec": "a semantic-model sub-config the test does not shrink",
    "phi4_multimodal": "vision and audio sub-configs the test does not shrink",
    "pocket_tts": "its flow head's sizes are tied to the default backbone",
    "pocket_tts_audio_tokenizer": "an audio codec whose convolutions need the default sizes",
    "qwen2_5_omni": "no AutoModel class for its text config",
    "qwen2_5_omni.dit": "no AutoModel class for its text config",
    "recurrent_gemma": "the toy model's 2 layers are both recurrent (no attention, no RoPE)",
    "step3p7": "no AutoModel class for its text config",
    "t5gemma": "no AutoModel class for its module config",
    "t5gemma2": "no AutoModel class for its decoder config",
    "unlimited_ocr": "no AutoModel class for its text config",
    "wav2vec2_bert": "the default config uses relative-key position embeddings (no RoPE module is built)",
    "wav2vec2_conformer": "the default config uses relative position embeddings (no RoPE module is built)",
    "xcodec2": "a semantic-model sub-config the test does not shrink",
    "zamba2": "its layer pattern is tied to the default 54 layers",
    # M-RoPE (3-axis position ids): built with their vision towers and an mrope_section that fits
    # the toy head, in test_patch_multimodal.py.
    **dict.fromkeys(MROPE_FAMILIES, "M-RoPE: run as a vision-language model in test_patch_multimodal.py"),
}
# Families the sweep matches but patch refuses: their RoPE module's wiring is not one patch knows.
REFUSED_WIRING = {
    "axk1": "not rotary's tables",
    "codegen": "rotary cannot read its config",
    "deepseek_v2": "does not return a (cos, sin) pair",
    "deepseek_v3": "not rotary's tables",
    "gptj": "rotary cannot read its config",
    "llama4": "does not return a (cos, sin) pair",
    "longcat_flash": "not rotary's tables",
    "mimo_v2_flash": "rotary cannot read its config",
    "youtu": "not rotary's tables",
}
# Patched families whose attention does not hand transformers' apply function the full head with
# rotary's tables (partial rotary sliced before the call, MLA's split heads, toy models without an
# attention layer): their family's own apply function rotates by rotary's tables.
TABLES_ONLY = {
    "axk2",
    "deepseek_v32",
    "glm4_moe_lite",
    "glm_moe_dsa",
    "mistral_large4",
    "persimmon",
    "phi",
    "stablelm",
}
# Patched, but the model hands its RoPE module position ids of another shape than patch serves:
# the first forward raises rotary.Error rather than return tables that are not the class's.
REFUSED_AT_FORWARD = {"neomme": "position_ids: NeoMMERotaryEmbedding was given shape (2, 2, 7)"}
# Sweep families whose code is not a text model with input_ids (encoders of other inputs).
NOT_TEXT_INPUT = {
    "moonshine": "an encoder-decoder over audio features",
    "timesfm2_5": "a time-series model (past_values, not input_ids)",
}


def match_families():
    return [f for f in rotary.families() if f["state"] == "match" and f["kind"] == "text"]


def model_type_of(family):
    folder = family["family"].split(".")[0]
    return folder if folder in CONFIG_NAMES else family["model_types"][0]


def build(model_type, **overrides):
    """The family's toy model, seeded: its text model's config at SMALL sizes."""
    outer = transformers.AutoConfig.for_model(model_type)
    text = outer.get_text_config(decoder=True)
    text_type = text.model_type if text.model_type in CONFIG_NAMES else model_type
    sizes = dict(SMALL, **overrides)
    try:
        config = transformers.AutoConfig.for_model(text_type, **sizes)
    except AttributeError:  # head_dim is a read-only property in some configs (Falcon)
        sizes.pop("head_dim")
        config = transformers.AutoConfig.for_model(text_type, **sizes)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return transformers.AutoModelForCausalLM.from_config(config).eval()
        except ValueError:  # no causal LM head (encoders): the bare model
            return transformers.AutoModel.from_config(config).eval()


def left_padded_batch():
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 128, (2, 7), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, :3] = 0  # the first row is 3 tokens shorter, padded on the left
    ids[0, :3] = 0
    return ids, mask


def outputs(model, ids, mask):
    """(last logits or hidden states, greedily generated tokens or None) under no_grad."""
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask)
        first = out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state
        tokens = None
        if isinstance(model, transformers.GenerationMixin) and model.can_generate():
            tokens = model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False, pad_token_id=0
            )
    return first, tokens


def instance_state(model):
    """Every submodule's instance attributes, by identity: what unpatch must restore exactly."""
    return {name: dict(vars(module)) for name, module in model.named_modules()}


def assert_same_objects(before, after):
    assert before.keys() == after.keys()
    for name, attributes in before.items():
        assert attributes.keys() == after[name].keys(), name
        for key, value in attributes.items():
            assert after[name][key] is value, f"{name}.{key}"


class KernelSpy:
    """Counts the rotations patch hands to rotary.torch.apply_rotary."""

    def __init__(self, monkeypatch):
        self.calls = 0
        real = _patch.apply_rotary

        def counting(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(_patch, "apply_rotary", counting)


FAMILIES = [f for f in match_families() if f["family"] not in NOT_BUILT and f["family"] not in NOT_TEXT_INPUT]


@pytest.mark.parametrize(
    "family",
    [f for f in FAMILIES if f["family"] not in REFUSED_WIRING and f["family"] not in REFUSED_AT_FORWARD],
    ids=lambda f: f["family"],
)
def test_patched_model_generates_as_transformers(family, monkeypatch):
    model = build(model_type_of(family), **OVERRIDES.get(family["family"], {}))
    twin = copy.deepcopy(model)  # the same class and weights, never patched
    ids, mask = left_padded_batch()
    want_first, want_tokens = outputs(model, ids, mask)
    before = instance_state(model)

    rotary.patch(model)
    spy = KernelSpy(monkeypatch)  # after patch, which probes the rotation once
    got_first, got_tokens = outputs(model, ids, mask)
    with torch.no_grad():
        twin_out = twin(input_ids=ids, attention_mask=mask)
    rerouted = _patch._describe(model)["rerouted"]
    asked = [source.last is not None for source in _patch._PATCHES[model].sources]
    rotary.unpatch(model)
    after_first, _ = outputs(model, ids, mask)

    assert (got_first - want_first).abs().max().item() <= 1e-5
    if want_tokens is not None:
        assert torch.equal(got_tokens, want_tokens)
    # Per instance: the unpatched twin computes exactly what the model did before patching.
    twin_first = twin_out.logits if getattr(twin_out, "logits", None) is not None else twin_out.last_hidden_state
    assert torch.equal(twin_first, want_first)
    # A patched RoPE module served the forward, so the test is not vacuous (Granite-SWA keeps an unused
    # global one beside its per-base modules) ...
    assert any(asked)
    # ... and the rotation went through rotary.torch.apply_rotary wherever the family's wiring allows it.
    if family["family"] in TABLES_ONLY:
        assert not rerouted and spy.calls == 0
    else:
        assert rerouted and spy.calls > 0
    # unpatch restores the very objects, and the results.
    assert_same_objects(before, instance_state(model))
    assert torch.equal(after_first, want_first)


@pytest.mark.parametrize("name", sorted(REFUSED_WIRING))
def test_unrecognised_wiring_is_refused_before_any_change(name):
    family = next(f for f in match_families() if f["family"] == name)
    model = build(model_type_of(family))
    before = instance_state(model)
    with pytest.raises(rotary.Error, match="model_type '.*'") as raised:
        rotary.patch(model)
    assert REFUSED_WIRING[name] in str(raised.value)
    assert_same_objects(before, instance_state(model))


@pytest.mark.parametrize("name", sorted(REFUSED_AT_FORWARD))
def test_other_position_ids_are_refused_at_the_first_forward(name):
    family = next(f for f in match_families() if f["family"] == name)
    model = build(model_type_of(family))
    ids, mask = left_padded_batch()
    with rotary.patched(model), pytest.raises(rotary.Error) as raised:
        outputs(model, ids, mask)
    assert REFUSED_AT_FORWARD[name] in str(raised.value)


# ---- families the sweep refuses ----------------------------------------------------------------------

REFUSED_BUILDS = {"gemma4": {}, "glm4_moe": {}, "deepseek_v4": {}}


@pytest.mark.parametrize("name", sorted(REFUSED_BUILDS))
def test_refused_family_raises_with_the_sweeps_reason_before_any_change(name):
    family = next(f for f in rotary.families() if f["family"] == name)
    assert family["state"] == "refused"
    model = build(model_type_of(family), **REFUSED_BUILDS[name])
    before = instance_state(model)
    with pytest.raises(rotary.Error) as raised:
        rotary.patch(model)
    message = str(raised.value)
    assert f"model_type '{model.config.model_type}'" in message
    reason = family["detail"].split(": ", 1)[1]  # the sweep's detail after the case it comes from
    assert reason.split(": ")[-1][:40] in message
    assert_same_objects(before, instance_state(model))


# ---- one Llama, in detail ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llama():
    return build("llama")


def test_dynamic_cache_step_by_step_equals_unpatched(llama):
    ids, mask = left_padded_batch()
    positions = (mask.cumsum(-1) - 1).clamp(min=0)

    def decode(model):
        cache = transformers.DynamicCache(config=model.config)
        with torch.no_grad():
            out = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache)
            steps = [out.logits[:, -1]]
            step_mask, step_pos = mask, positions[:, -1:]
            token = out.logits[:, -1].argmax(-1, keepdim=True)
            for _ in range(4):
                step_mask = torch.cat([step_mask, torch.ones_like(token)], dim=1)
                step_pos = step_pos + 1
                out = model(input_ids=token, attention_mask=step_mask, position_ids=step_pos, cache=cache)
                steps.append(out.logits[:, -1])
                token = out.logits[:, -1].argmax(-1, keepdim=True)
        return torch.stack(steps)

    want = decode(llama)
    with rotary.patched(llama):
        got = decode(llama)
    assert (got - want).abs().max().item() <= 1e-5


def capture_rotation(model, monkeypatch, patched):
    """(q before rotation, (q, k) after) of layer 0 for one forward of `model`."""
    import transformers.models.llama.modeling_llama as modeling

    seen = []
    if patched:
        real = _patch.apply_rotary

        def spy(q, k, positions, rope, **kwargs):
            out = real(q, k, positions, rope, **kwargs)
            seen.append((q.clone(), k.clone(), out))
            return out

        monkeypatch.setattr(_patch, "apply_rotary", spy)
    else:
        real = modeling.apply_rotary_pos_emb

        def spy(q, k, cos, sin, **kwargs):
            out = real(q, k, cos, sin, **kwargs)
            seen.append((q.clone(), k.clone(), out))
            return out

        monkeypatch.setattr(modeling, "apply_rotary_pos_emb", spy)
    return seen


def float64_rotation(x, positions, inv_freq):
    """transformers' half-split RoPE on the model's float32 theta, every step in float64."""
    angle = positions.double()[..., None] * inv_freq.double()
    cos = torch.cat([angle.cos(), angle.cos()], -1)[:, None]
    sin = torch.cat([angle.sin(), angle.sin()], -1)[:, None]
    x = x.double()
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin


def test_exact_angles_beat_float32_angles_at_long_positions(llama, monkeypatch):
    ids = torch.randint(3, 128, (1, 8), generator=torch.Generator().manual_seed(2))
    positions = torch.tensor([[100_000, 100_001, 300_000, 500_007, 777_777, 999_983, 999_999, 1_000_000]])
    inv_freq = llama.model.rotary_emb.inv_freq
    errors = {}
    for mode in (None, "exact"):
        patching = rotary.patched(llama, angle_mode=mode) if mode else contextlib.nullcontext()
        with patching, monkeypatch.context() as m, torch.no_grad():
            seen = capture_rotation(llama, m, patched=mode is not None)
            llama(input_ids=ids, position_ids=positions)
        q, k, (q_rot, k_rot) = seen[0]
        errors[mode] = max(
            (q_rot.double() - float64_rotation(q, positions, inv_freq)).abs().max().item(),
            (k_rot.double() - float64_rotation(k, positions, inv_freq)).abs().max().item(),
        )
    # transformers' float32 angles are off by up to half an ulp of 10^6 (0.03 rad); rotary's exact
    # angles leave only the rounding of cos/sin and of the products.
    assert errors["exact"] < 1e-6 < 1e-3 < errors[None]
    assert errors["exact"] * 1000 < errors[None]


def test_the_comparison_fails_on_a_wrong_base(llama):
    ids, mask = left_padded_batch()
    want, _ = outputs(llama, ids, mask)
    with rotary.patched(llama):
        source = _patch._PATCHES[llama].sources[0]
        wrong = dict(llama.config.to_dict(), rope_parameters={"rope_type": "default", "rope_theta": 20000.0})
        source.ropes = {None: rotary.Rope(wrong)}
        got, _ = outputs(llama, ids, mask)
    # Far past the 1e-5 the family test allows (a toy model's logits move by ~3e-4).
    assert (got - want).abs().max().item() > 10 * 1e-5


def test_patch_refuses_tables_that_differ_from_the_module(monkeypatch):
    model = build("llama")
    model.model.rotary_emb.config.rope_parameters["rope_theta"] = 20000.0  # the module keeps its inv_freq
    before = instance_state(model)
    with pytest.raises(rotary.Error, match="not rotary's tables"):
        rotary.patch(model)
    assert_same_objects(before, instance_state(model))


def test_patched_model_compiles(llama, monkeypatch):
    ids, mask = left_padded_batch()
    want, _ = outputs(llama, ids, mask)
    with rotary.patched(llama):
        spy = KernelSpy(monkeypatch)
        compiled = torch.compile(llama, backend="aot_eager")
        with torch.no_grad():
            got = compiled(input_ids=ids, attention_mask=mask).logits
        torch._dynamo.reset()
    assert spy.calls > 0  # traced through rotary.torch.apply_rotary's operator
    assert (got - want).abs().max().item() <= 1e-5


def test_patch_twice_is_refused_and_unpatch_needs_a_patch(llama):
    with pytest.raises(rotary.Error, match="not patched"):
        rotary.unpatch(llama)
    rotary.patch(llama)
    try:
        with pytest.raises(rotary.Error, match="already patched"):
            rotary.patch(llama)
    finally:
        rotary.unpatch(llama)


def test_context_manager_unpatches_on_exception(llama):
    import sys

    modules = set(sys.modules)
    before = instance_state(llama)
    with pytest.raises(RuntimeError, match="inside"), rotary.patched(llama, angle_mode="exact") as model:
        assert model is llama and _patch._describe(llama)["angle_mode"] == "exact"
        raise RuntimeError("inside")
    assert _patch._describe(llama) is None
    assert_same_objects(before, instance_state(llama))
    assert set(sys.modules) == modules  # the globals patch re-created are gone too


def test_bad_arguments_are_named():
    with pytest.raises(rotary.Error, match="angle_mode"):
        rotary.patch(torch.nn.Linear(2, 2), angle_mode="float64")
    with pytest.raises(rotary.Error, match="expected a torch.nn.Module"):
        rotary.patch("llama")
    with pytest.raises(rotary.Error, match="no RoPE module found"):
        rotary.patch(torch.nn.Linear(2, 2))


def test_an_existing_instance_forward_is_not_hidden(llama):
    hook = llama.model.rotary_emb.forward
    llama.model.rotary_emb.forward = hook  # as accelerate's hooks replace forward on the instance
    try:
        with pytest.raises(rotary.Error, match="already replaced on this instance"):
            rotary.patch(llama)
    finally:
        del llama.model.rotary_emb.forward
