"""Patch a transformers model with rotary's RoPE and generate: same tokens as the unpatched model.

    python examples/python/patch_and_generate.py

The model is a Llama with random weights and toy sizes (no download), but Llama 3.1's real RoPE
(base 500000 and its llama3 frequency bands, from the stored config "llama-3.1-8b"). A batch of two
prompts of different lengths is left-padded, as generate() expects, so the position ids come from
the attention mask. The same code patches a model from AutoModelForCausalLM.from_pretrained(...).
Exit status 1 when the tokens differ.
"""

import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

import rotary


def toy_llama():
    rope_fields = {k: v for k, v in rotary.builtin_config("llama-3.1-8b").items() if k.startswith("rope")}
    config = LlamaConfig(
        vocab_size=256, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=131072, **rope_fields,
    )  # fmt: skip
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


def generate(model, inputs):
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=12, do_sample=False, output_logits=True,
                             return_dict_in_generate=True, pad_token_id=0)  # fmt: skip
    return out.sequences, torch.stack(out.logits)


def main():
    model = toy_llama()
    # Two prompts, the shorter one left-padded with token 0 and masked out.
    input_ids = torch.tensor([[0, 0, 0, 5, 17, 42], [7, 8, 9, 10, 11, 12]])
    attention_mask = (torch.arange(6) >= torch.tensor([[3], [0]])).long()
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}

    tokens, logits = generate(model, inputs)
    with rotary.patched(model):  # transformers' float32 angles: the same numbers to rounding
        patched_tokens, patched_logits = generate(model, inputs)
    with rotary.patched(model, angle_mode="exact"):  # angles reduced exactly, then rounded once
        exact_tokens, _ = generate(model, inputs)

    print("unpatched:", tokens[:, 6:].tolist())
    print("patched:  ", patched_tokens[:, 6:].tolist())
    print(f"largest logit difference: {(logits - patched_logits).abs().max().item():.1e}")
    print("exact angles give the same tokens:", torch.equal(tokens, exact_tokens))
    return 0 if torch.equal(tokens, patched_tokens) else 1


if __name__ == "__main__":
    sys.exit(main())
