"""Check someone else's RoPE against a model's config with rotary.verify.

    python examples/python/verify_third_party.py

rotary.verify calls the function under test from outside, on probe vectors, and works out which
pairs it rotates, with which frequencies and scaling, then compares with what the expected config
says (here the stored config of Llama 3.1 8B). Two candidates: transformers' own Llama RoPE built
from that config, and the same code built from a config that lost its `rope_scaling` block in a
conversion — the kind of mistake that loads without a word and makes long contexts worse.
Exit status 0 when the first matches and the second is caught.
"""

import copy
import sys

from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

import rotary


def transformers_rope(config_dict):
    """transformers' Llama RoPE as ``fn(q, k, positions)``: its cos/sin module and apply function."""
    module = LlamaRotaryEmbedding(LlamaConfig(**config_dict))
    return rotary.adapt_hf(apply_rotary_pos_emb, module)


def main():
    expected = rotary.builtin_config("llama-3.1-8b")
    faithful = rotary.verify(transformers_rope(expected), expected="llama-3.1-8b")
    print("transformers' Llama RoPE, from the published config:")
    print(faithful, "\n")

    converted = copy.deepcopy(expected)
    for key in ("rope_scaling", "rope_parameters"):
        converted.pop(key, None)
    converted["rope_theta"] = expected.get("rope_theta", 500000.0)
    broken = rotary.verify(transformers_rope(converted), expected="llama-3.1-8b")
    print("the same code, from a config that lost its rope_scaling block:")
    print(broken)
    return 0 if faithful.matches and not broken.matches else 1


if __name__ == "__main__":
    sys.exit(main())
