"""Drop-in replacements for the two common RoPE calling conventions, backed by rotary's kernels.

Migrating code changes one import:

- ``from rotary.compat.meta import precompute_freqs_cis, apply_rotary_emb`` (Meta's Llama
  reference code: a complex ``freqs_cis`` table, interleaved pairs);
- ``from rotary.compat.hf import apply_rotary_pos_emb, RotaryEmbedding`` (transformers: cos/sin
  tables, half-split pairs).

Each apply function computes exactly its original's formula for any table it is given. When the
table is one that rotary itself produced (``precompute_freqs_cis`` here, or the ``RotaryEmbedding``
here) and it was not modified since, the rotation runs in rotary's kernels instead, from the
positions that table was built for. These modules import torch.
"""
