"""The code blocks of README.md, and the context each one needs to run or compile.

A README snippet shows one step, so it uses names an earlier line or the reader's program would
have defined (q, k, a config path). The contexts below supply exactly those names, nothing that
changes what the snippet does. Every ```python and ```cpp block must have one: a new snippet
without a context fails the tests, so no README example goes unchecked.

Run as a script (by CTest) it writes a CMake project with one translation unit per C++ snippet,
built against an installed rotary:  python3 readme_snippets.py README.md OUT_DIR
"""

import re
import sys
from pathlib import Path

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)


def snippets(readme, language):
    """(line number, code) of each fenced block of ``language`` in the Markdown file ``readme``."""
    text = Path(readme).read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(2)) for m in _FENCE.finditer(text) if m.group(1) == language]


def context_for(code, contexts):
    """The one context whose key occurs in ``code``, or None."""
    found = [value for key, value in contexts.items() if key in code]
    return found[0] if len(found) == 1 else None


# Python: what runs before a snippet, in a fresh namespace, in a directory that holds the stored
# configs under the paths the README names (written by the test).
PYTHON_CONTEXTS = {
    'rotary.Rope("Llama-3.1-8B/config.json")': "",
    "rotary.KvCache.paged(": """
import torch, rotary
rope = rotary.Rope("Llama-3.1-8B/config.json")
q = torch.randn(5, 32, 128, dtype=torch.bfloat16)
k, v = torch.randn(5, 8, 128, dtype=torch.bfloat16), torch.randn(5, 8, 128, dtype=torch.bfloat16)
positions = torch.arange(5)
""",
    "rotary.mrope_positions(": """
import torch, rotary
q, k = torch.randn(308, 28, 128), torch.randn(308, 4, 128)
patches_q, patches_k = torch.randn(1176, 16, 80), torch.randn(1176, 16, 80)
""",
    'rotary.Rope("Llama-4-Scout-17B-16E-Instruct/config.json", vision=True)': """
import numpy as np, torch, rotary
q, k = torch.randn(577, 16, 88), torch.randn(577, 16, 88)
""",
    "def broken_rope(": "",
    "rd.packed_shard(cu_seqlens": "",
    'rotary.config_from_file("tests/data/configs/llama-3.1-8b.json")': "",
    "rt.apply_rotary(q, k, positions, rope": """
import torch
q, k = torch.randn(2, 32, 16, 128), torch.randn(2, 8, 16, 128)
positions = torch.arange(16).expand(2, 16)
k_new, v_new, new_positions = torch.randn(3, 8, 128), torch.randn(3, 8, 128), torch.arange(16, 19)
key_cache, value_cache = torch.zeros(4, 16, 8, 128), torch.zeros(4, 16, 8, 128)
slots = torch.tensor([2 * 16 + 0, 2 * 16 + 1, 2 * 16 + 2])
""",
    "rotary.rms_norm_rotate(rope, q, positions, k, q_norm=attn.q_norm": """
import torch
from transformers import Qwen3Config, Qwen3ForCausalLM
torch.manual_seed(0)
model = Qwen3ForCausalLM(Qwen3Config(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                                     num_attention_heads=4, num_key_value_heads=2, head_dim=16)).eval()
q, k = torch.randn(1, 5, 4, 16), torch.randn(1, 5, 2, 16)
positions = torch.arange(5)
""",
    "rotary.patch(model)": """
import torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(0)
model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                                     num_attention_heads=4, num_key_value_heads=2)).eval()
inputs = {"input_ids": torch.tensor([[1, 5, 9, 3]]), "attention_mask": torch.ones(1, 4, dtype=torch.long)}
""",
}

# C++: each snippet becomes the body of a function whose parameters are the names it uses.
_CPP_HEADERS = (
    "#include <rotary/rotary.h>\n\n#include <cstdint>\n#include <numeric>\n#include <span>\n#include <vector>\n"
)
CPP_CONTEXTS = {
    "rotary::config_from_json_file(": ("", "void* q_ptr, void* k_ptr, int64_t tokens"),
    "rotary::KvCache::paged(": (
        "",
        (
            "const rotary::Rope& rope, rotary::TensorView q, rotary::ConstTensorView k, rotary::ConstTensorView v,"
            " std::span<const int64_t> positions, std::span<float> out"
        ),
    ),
    "rotary::packed_shard(cu_seqlens": ("", ""),
    "rotary::rms_norm_rotate(rope, norms": (
        "",
        (
            "const rotary::Rope& rope, rotary::TensorView q, rotary::TensorView k, std::span<const int64_t> positions,"
            " const std::vector<float>& q_norm_weight, const std::vector<float>& k_norm_weight"
        ),
    ),
    "rotary::CudaRope rope(config)": (
        "",
        (
            "const rotary::RopeConfig& config, const int64_t* d_positions, int64_t n, rotary::TensorView q,"
            " rotary::TensorView k, rotary::ConstTensorView q_in, rotary::TensorView q_out,"
            " rotary::ConstTensorView k_in, rotary::TensorView k_out, rotary::ConstTensorView v,"
            " const int32_t* d_block_table, int64_t num_blocks, int64_t block_size, int64_t kv_heads,"
            " int64_t head_dim, rotary::CudaStream stream"
        ),
    ),
}


def cpp_source(code, context):
    """A translation unit: the snippet's #include lines first, then its statements in a function."""
    extra_headers, parameters = context
    includes = [line for line in code.splitlines() if line.startswith("#include")]
    body = "\n".join("  " + line if line else "" for line in code.splitlines() if not line.startswith("#include"))
    head = _CPP_HEADERS + extra_headers + "".join(line + "\n" for line in includes)
    return f"{head}\nvoid readme_snippet({parameters}) {{\n{body}\n}}\n\nint main() {{ return 0; }}\n"


_CMAKE = """cmake_minimum_required(VERSION 3.24)
project(readme_snippets LANGUAGES CXX)
find_package(rotary REQUIRED)
foreach(snippet {plain})
  add_executable(${{snippet}} ${{snippet}}.cc)
  target_link_libraries(${{snippet}} PRIVATE rotary::rotary)
endforeach()
# The CUDA snippet needs the CUDA library, installed when rotary was built with nvcc.
if(TARGET rotary::cuda)
  foreach(snippet {cuda})
    add_executable(${{snippet}} ${{snippet}}.cc)
    target_link_libraries(${{snippet}} PRIVATE rotary::cuda)
  endforeach()
endif()
"""


def write_cpp_project(readme, out_dir):
    """Writes out_dir/CMakeLists.txt and one source per C++ snippet; raises on a snippet without context."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plain, cuda = [], []
    for line, code in snippets(readme, "cpp"):
        context = context_for(code, CPP_CONTEXTS)
        if context is None:
            raise SystemExit(f"README.md:{line}: a C++ snippet without exactly one context in {__file__}")
        name = f"snippet_line_{line}"
        (out / f"{name}.cc").write_text(cpp_source(code, context), encoding="utf-8")
        (cuda if "rotary/cuda.h" in code else plain).append(name)
    (out / "CMakeLists.txt").write_text(_CMAKE.format(plain=" ".join(plain), cuda=" ".join(cuda)), encoding="utf-8")


if __name__ == "__main__":
    write_cpp_project(sys.argv[1], sys.argv[2])
