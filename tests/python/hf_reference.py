"""transformers as the reference: each stored model config run through the model family's own code.

For every config stored under tests/data/configs this module builds, offline, the transformers config
object of the model's family (the stored fields passed to the family's config class), the family's
own RotaryEmbedding module, and the family's own apply function. Nothing here re-implements a RoPE
formula: inverse frequencies, attention scaling and cos/sin come from the module, rotated q/k from
the family's apply_rotary_pos_emb (or its equivalent).

Adjustments needed to instantiate transformers from the stored subset of a config are listed in
ADJUSTMENTS and applied in `hf_config_kwargs`; each says why.
"""

import glob
import importlib
import json
import os
from dataclasses import dataclass, field

import torch
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "..", "data", "configs")

# Model types whose family transformers does not ship, mapped to the family that implements the
# same RoPE, or to None (skipped, with the reason).
SUBSTITUTE_FAMILY = {
    # Phi-3-vision's language model is Phi-3 (the remote code's Phi3SuScaledRotaryEmbedding);
    # transformers has no phi3_v model type.
    "phi3_v": "phi3",
    # InternLM2 is remote code; its config's {"type": "dynamic"} block is transformers' generic
    # dynamic NTK (modeling_rope_utils), run here through the Llama rotary embedding.
    "internlm2": "llama",
}
UNSUPPORTED = {
    "qwen": "Qwen-1 is remote code only, and its use_dynamic_ntk flag (a log-n NTK scheme of its "
    "own) is not a transformers rope_type: there is no transformers implementation to compare with",
}

ADJUSTMENTS = """\
- num_hidden_layers = len(layer_types) when the stored subset keeps layer_types but not the layer
  count (gpt-oss-20b): transformers checks that the two agree.
- a string sliding_window_pattern ("LLLG", EXAONE 4.0) is dropped when layer_types was not stored:
  transformers needs layer_types to read it; it does not affect RoPE (one rope dict for all layers).
- Phi-3 "su": transformers 5.24's Phi3Config renames "su" to "longrope" only after standardizing
  the rope parameters, so the top-level original_max_position_embeddings is never copied in and
  validation raises KeyError (Missing required keys ... 'original_max_position_embeddings'). The
  reference is given "longrope" (the name transformers itself maps "su" to); rotary reads "su".
"""


def load_record(file_name):
    """The stored config `file_name` ("llama-3.1-8b.json", a plain config.json) with its provenance
    (sources/llama-3.1-8b.json): {"model", "source", "config"}."""
    with open(os.path.join(CONFIG_DIR, file_name), encoding="utf-8") as f:
        config = json.load(f)
    with open(os.path.join(CONFIG_DIR, "sources", file_name), encoding="utf-8") as f:
        provenance = json.load(f)
    return {"model": provenance["model"], "source": provenance["source"], "config": config}


def load_records():
    """(file name, record) for every stored config, sorted by file name; see `load_record`."""
    paths = sorted(glob.glob(os.path.join(CONFIG_DIR, "*.json")))
    return [(os.path.basename(path), load_record(os.path.basename(path))) for path in paths]


def text_fields(record):
    config = record["config"]
    return dict(config["text_config"]) if "text_config" in config else dict(config)


def family_of(record):
    """(transformers model_type, skip reason or None)."""
    model_type = text_fields(record)["model_type"]
    if model_type in UNSUPPORTED:
        return None, UNSUPPORTED[model_type]
    return SUBSTITUTE_FAMILY.get(model_type, model_type), None


def hf_config_kwargs(record):
    fields = text_fields(record)
    fields.pop("model_type")
    if "layer_types" in fields and "num_hidden_layers" not in fields:
        fields["num_hidden_layers"] = len(fields["layer_types"])
    if isinstance(fields.get("sliding_window_pattern"), str) and "layer_types" not in fields:
        fields.pop("sliding_window_pattern")
    scaling = fields.get("rope_scaling")
    if isinstance(scaling, dict) and scaling.get("type") == "su":
        fields["rope_scaling"] = dict(scaling, type="longrope")
    return fields


# transformers module (models/<name>/modeling_<name>.py) per config model_type.
_MODULE = {
    "gemma3_text": "gemma3",
    "qwen2_5_vl_text": "qwen2_5_vl",
    "qwen3_5_text": "qwen3_5",
    "qwen3_vl_text": "qwen3_vl",
    "ministral3": "ministral3",
    "llama4_text": "llama4",
}

# Families whose module returns complex freqs_cis = polar(1, angle) * scaling (DeepSeek-V2 and Llama 4
# multiply complex pairs (2j, 2j + 1)).
_COMPLEX = ("deepseek_v2", "llama4_text")


def _modeling(model_type):
    name = _MODULE.get(model_type, model_type)
    return importlib.import_module(f"transformers.models.{name}.modeling_{name}")


def _rotary_embedding_class(module):
    names = [n for n in dir(module) if n.endswith("RotaryEmbedding") and "Vision" not in n]
    assert len(names) == 1, names
    return getattr(module, names[0])


@dataclass
class HfRope:
    """One model (one layer type) as transformers runs it."""

    model: str
    family: str  # transformers model_type of the text model
    layer_type: str | None
    config: object  # the transformers config object
    modeling: object = field(repr=False)  # the family's modeling module
    rotary_dim: int = 0

    # ---- the RotaryEmbedding module -------------------------------------------------------------
    def new_module(self):
        """A fresh RotaryEmbedding: its dynamic / LongRoPE state starts from initialisation."""
        if self.family == "gptj":
            return None
        return _rotary_embedding_class(self.modeling)(self.config)

    def _buffers(self, module):
        if self.layer_type is not None:
            return (
                getattr(module, f"{self.layer_type}_inv_freq"),
                getattr(module, f"{self.layer_type}_attention_scaling"),
            )
        return module.inv_freq, module.attention_scaling

    def initial_frequencies(self):
        """(inv_freq float32 tensor, attention factor) at initialisation."""
        if self.family == "gptj":
            return self.gptj_inv_freq(), 1.0
        return self._buffers(self.new_module())

    def gptj_inv_freq(self):
        # GPT-J keeps no inv_freq buffer: create_sinusoidal_positions builds its sin/cos table from
        # 1 / 10000 ** (arange(0, dim, 2) / dim). The same expression is evaluated here, and
        # tests check that the module's own table is sin/cos of position * these values, bit for bit.
        dim = self.rotary_dim
        return 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.int64) / dim))

    def call(self, positions, dtype=torch.float32):
        """One forward call with position_ids of shape (batch, seq).

        Returns (cos, sin, inv_freq, attention_factor): the module's cos/sin in `dtype`, shaped
        as the family returns them (see family_tables; GPT-J: from its table), and the frequencies
        that call used (the buffer after the call: dynamic NTK and LongRoPE update it per call).
        """
        positions = torch.as_tensor(positions, dtype=torch.int64)
        if positions.ndim == 1:
            positions = positions[None]
        x = torch.zeros(1, dtype=dtype)
        if self.family == "gptj":
            # The module's table (embed_positions) has n_positions rows, so positions past it would
            # not index; the same table, built by the same function, is made as long as needed.
            table = self.modeling.create_sinusoidal_positions(int(positions.max()) + 1, self.rotary_dim)
            sincos = table[positions].to(dtype)
            sin, cos = torch.split(sincos, sincos.shape[-1] // 2, dim=-1)
            return cos, sin, self.gptj_inv_freq(), 1.0
        module = self.new_module()
        if self.layer_type is not None:
            cos, sin = module(x, positions, self.layer_type)
        else:
            out = module(x, positions)
            if self.family in _COMPLEX:
                inv_freq, scaling = self._buffers(module)
                return out.real.to(dtype), out.imag.to(dtype), inv_freq.clone(), scaling
            cos, sin = out
        inv_freq, scaling = self._buffers(module)
        return cos, sin, inv_freq.clone(), scaling

    # Families whose module returns one column per pair (the others return cat((c, c), -1), or,
    # those that pair (2j, 2j + 1) with rotate_half of their own, each column twice in a row).
    _ONE_COLUMN_PER_PAIR = ("gptj", "gpt_oss", *_COMPLEX)
    _COLUMN_TWICE = ("cohere", "cohere2")  # CohereRotaryEmbedding: repeat_interleave(freqs, 2)

    def half_columns(self, table):
        """The rotary_dim // 2 distinct columns of the module's cos/sin table (one per pair)."""
        if self.family in self._ONE_COLUMN_PER_PAIR:
            return table
        if self.family in self._COLUMN_TWICE:
            return table[..., 0::2]
        return table[..., : table.shape[-1] // 2]

    def family_tables(self, cos, sin):
        """From one column per pair, (batch, seq, rotary_dim // 2), the tables in the layout the
        family's module returns and its apply function takes."""
        if self.family in self._ONE_COLUMN_PER_PAIR:
            return cos, sin
        if self.family in self._COLUMN_TWICE:
            return cos.repeat_interleave(2, dim=-1), sin.repeat_interleave(2, dim=-1)
        return torch.cat((cos, cos), dim=-1), torch.cat((sin, sin), dim=-1)

    # ---- the family's apply function -------------------------------------------------------------
    def apply(self, q, k, positions, dtype):
        """Rotates q, k of shape (batch, heads, seq, head_dim) with the family's own cos/sin and
        apply function. Returns q', k' in rotary's channel order (see `apply_tables`)."""
        if self.family in _COMPLEX:  # the module's complex table, as the model uses it
            return self._apply_complex(q, k, self.call_complex(positions))
        cos, sin, _, _ = self.call(positions, dtype)
        return self.apply_tables(q, k, cos, sin)

    def apply_tables(self, q, k, cos, sin):
        """The family's apply function with the given tables (family_tables layout).

        DeepSeek-V3's apply_rotary_pos_emb_interleave returns its output de-interleaved; it is
        un-permuted here (see `_unpermute`), which changes no value.
        """
        m = self.modeling
        d = self.rotary_dim
        if self.family == "gptj":  # (batch, seq, heads, head_dim) and a rotary_dim slice
            qs, ks = q.transpose(1, 2), k.transpose(1, 2)
            q_rot = m.apply_rotary_pos_emb(qs[..., :d], sin, cos)
            k_rot = m.apply_rotary_pos_emb(ks[..., :d], sin, cos)
            qs = torch.cat([q_rot, qs[..., d:]], dim=-1)
            ks = torch.cat([k_rot, ks[..., d:]], dim=-1)
            return qs.transpose(1, 2), ks.transpose(1, 2)
        if self.family in _COMPLEX:
            return self._apply_complex(q, k, torch.complex(cos, sin))
        if self.family == "deepseek_v3" and getattr(self.config, "rope_interleave", True):
            qo, ko = m.apply_rotary_pos_emb_interleave(q, k, cos, sin)
            return _unpermute(qo), _unpermute(ko)
        if self.family in ("phi", "stablelm"):  # the attention module splits off the rotary part
            q_rot, k_rot = m.apply_rotary_pos_emb(q[..., :d], k[..., :d], cos, sin)
            return torch.cat([q_rot, q[..., d:]], dim=-1), torch.cat([k_rot, k[..., d:]], dim=-1)
        return m.apply_rotary_pos_emb(q, k, cos, sin)

    def _apply_complex(self, q, k, freqs_cis):
        if self.family == "llama4_text":  # Llama4TextAttention rotates (batch, seq, heads, head_dim)
            qo, ko = self.modeling.apply_rotary_emb(q.transpose(1, 2), k.transpose(1, 2), freqs_cis)
            return qo.transpose(1, 2), ko.transpose(1, 2)
        return self.modeling.apply_rotary_emb(q, k, freqs_cis)

    def call_complex(self, positions):
        positions = torch.as_tensor(positions, dtype=torch.int64)
        if positions.ndim == 1:
            positions = positions[None]
        return self.new_module()(torch.zeros(1), positions)


def _unpermute(x):
    """DeepSeek-V3's apply_rotary_pos_emb_interleave returns [rotated evens, rotated odds]; rotary
    rotates the pairs (2j, 2j+1) where they lie. Same numbers, channels regrouped: put them back."""
    half = x.shape[-1] // 2
    out = torch.empty_like(x)
    out[..., 0::2] = x[..., :half]
    out[..., 1::2] = x[..., half:]
    return out


def hf_rope(file_name, record, layer_type):
    family, reason = family_of(record)
    assert reason is None, reason
    kwargs = hf_config_kwargs(record)
    config = CONFIG_MAPPING[family](**kwargs)
    config = getattr(config, "text_config", None) or config
    model_type = config.model_type
    modeling = _modeling(model_type)
    hf = HfRope(record["model"], model_type, layer_type, config, modeling)
    if model_type == "gptj":
        hf.rotary_dim = config.rotary_dim
    elif model_type == "deepseek_v2":
        hf.rotary_dim = 2 * hf.new_module().inv_freq.numel()
    else:
        hf.rotary_dim = 2 * hf.initial_frequencies()[0].numel()
    return hf
