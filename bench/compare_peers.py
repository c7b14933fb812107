#!/usr/bin/env python3
"""rotary against the memory limits and its peers: one process, one run, the same tensors.

    python3 bench/compare_peers.py --rotary-from build --gbench build-bench/bench/rotate_bench \
        --out bench/results-cpu.md          # the C++ benchmark first, then the peers; ~12 min
    python3 bench/compare_peers.py --quick                   # a few shapes: a smoke test

Implementations, each timed on the same q/k tensors (BSHD: batch, seq, heads, head_dim,
contiguous) with the same positions:

  limit in place      torch ``t.view(torch.float32).mul_(1.0)`` on q and k (the rotated channels
                      only, for partial rotary): reads and writes back exactly the bytes an
                      in-place rotation touches, 16-bit data taken as float32 pairs (a 16-bit mul_
                      converts and rounds: compute-bound, not a memory limit)
  limit out of place  torch ``dst.copy_(src)`` from q/k into the output tensors
  rotary              ``rotary.Rope.rotate`` in place, and out of place into the output tensors
  hf eager            transformers' own code as its models call it: the rotary embedding module's
                      forward (cos/sin from position_ids) + ``apply_rotary_pos_emb`` on the
                      (batch, heads, seq, head_dim) views of q/k ("full"), and the apply alone with
                      cos/sin computed beforehand ("apply"). Llama for half-split, GPT-NeoX for
                      partial rotary, GPT-J (gathered sin/cos table, ``rotate_every_two``) for
                      interleaved
  hf compile          the same two functions under ``torch.compile`` (skipped with the reason when
                      compiling fails)
  ort contrib         ONNX Runtime com.microsoft RotaryEmbedding (input, position_ids, cos_cache,
                      sin_cache; interleaved, rotary_embedding_dim, num_heads), one node for Q and
                      one for K, inputs and outputs bound to the same tensors (IOBinding)
  ort opset23         the ONNX opset-23 RotaryEmbedding, likewise, when onnxruntime has it

Bytes counted per call (read once + written once): in place, 2 x the rotated bytes; out of place,
2 x the tensor bytes. GB/s = 1e9 bytes / s. "% limit" is against the limit of the same mode
(in place: the mul_ limit; out of place: the copy limit) measured in the same rounds. Speedups are
ratios of median times: the peer's over rotary's (in place, and out of place, the like-for-like
comparison since every peer writes a new tensor).

Timing: for each shape x dtype x thread count, every implementation is warmed up, then timed in
interleaved rounds (the order rotates each round; a short pause before each sample lets the
previous implementation's OpenMP workers go idle, and a longer one after each multi-threaded ORT
sample lets ORT's spinning pool threads stop, --ort-settle-ms); each sample repeats the call until it lasts
--sample-ms; the figure is the median over rounds. A round during which other processes kept
more than --max-foreign-load cores busy (/proc/stat minus this process) is run again, up to twice;
the table gives the foreign load seen.

Python decode call (after the cases; --decode-call-rounds 0 skips it): one Llama-3-8B token, the
whole call from Python timed with ``timeit`` (min and median µs per call, 1 thread): rotary's
``Rope.rotate`` in place on NumPy arrays and torch tensors, ORT's contrib RotaryEmbedding through
IOBinding (bound once, ``run_with_iobinding`` per call), transformers' ``apply_rotary_pos_emb``
with cos/sin computed beforehand and with the rotary embedding module. At this size the call's
fixed cost (argument handling, dispatch) is what is measured, not memory bandwidth.

Threads: torch.set_num_threads(n) for torch, eager and compiled code and the limits; ORT
intra_op_num_threads = n; rotary max_threads = n (when the Python package has the argument).
"""

import argparse
import datetime
import glob
import importlib
import inspect
import json
import math
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import traceback
from dataclasses import dataclass, field

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from targets import targets_section  # bench/targets.py, beside this script

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ------------------------------------------------------------------------------------------------
# Shapes


@dataclass(frozen=True)
class Shape:
    name: str
    batch: int
    seq: int
    q_heads: int
    k_heads: int
    head_dim: int
    rotary_dim: int
    layout: str  # "half_split" or "interleaved"
    theta: float
    model: str  # whose transformers code is the eager peer: llama, neox, gptj
    decode: bool = False  # positions 123457 + 1009 b (no cache covers them)

    def positions(self):
        if self.decode:
            return (
                (123457 + 1009 * torch.arange(self.batch, dtype=torch.int64))[:, None]
                .expand(self.batch, self.seq)
                .contiguous()
            )
        return torch.arange(self.seq, dtype=torch.int64)[None, :].expand(self.batch, self.seq).contiguous()


# Llama-3-8B attention: 32 Q heads, 8 KV heads, head_dim 128, base 500000. GPT-NeoX partial
# rotary: Pythia-6.9B, 32 + 32 heads x 128, rotary_pct 0.25. Interleaved: GPT-J's pairing and base
# on the Llama-3 head counts.
SHAPES = {
    "prefill": Shape("prefill", 1, 4096, 32, 8, 128, 128, "half_split", 500000.0, "llama"),
    "prefill_long": Shape("prefill_long", 1, 32768, 32, 8, 128, 128, "half_split", 500000.0, "llama"),
    "decode": Shape("decode", 1, 1, 32, 8, 128, 128, "half_split", 500000.0, "llama", decode=True),
    "decode_batch64": Shape("decode_batch64", 64, 1, 32, 8, 128, 128, "half_split", 500000.0, "llama", decode=True),
    "partial_neox": Shape("partial_neox", 1, 4096, 32, 32, 128, 32, "half_split", 10000.0, "neox"),
    "interleaved": Shape("interleaved", 1, 4096, 32, 8, 128, 128, "interleaved", 10000.0, "gptj"),
}
DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}

# ------------------------------------------------------------------------------------------------
# Machine and environment


def cpu_description():
    model, flags = platform.processor() or "?", []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("?", "", platform.processor()):
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = value.split()
    except OSError:
        pass
    wanted = [
        "sse4_2",
        "avx",
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512bw",
        "avx512vl",
        "avx512_bf16",
        "avx512_fp16",
        "avx512_vnni",
        "avx_vnni",
        "amx_bf16",
        "amx_tile",
    ]
    return model, [f for f in wanted if f in flags], flags


def git_state():
    def run(*args):
        try:
            return subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    commit = run("rev-parse", "HEAD")
    dirty = run("status", "--porcelain", "--untracked-files=no", "--", "src", "include", "python", "CMakeLists.txt")
    return commit, dirty


class LoadMeter:
    """Cores kept busy by other processes: /proc/stat busy time minus this process's CPU time."""

    def __init__(self):
        self.hz = os.sysconf("SC_CLK_TCK")

    def _read(self):
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
            busy = (sum(fields[:8]) - fields[3] - fields[4]) / self.hz  # all but idle and iowait
        except (OSError, ValueError, IndexError):
            busy = float("nan")
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return time.perf_counter(), busy, usage.ru_utime + usage.ru_stime

    def start(self):
        self._begin = self._read()

    def foreign(self):
        t1, b1, o1 = self._read()
        t0, b0, o0 = self._begin
        return max(0.0, ((b1 - b0) - (o1 - o0)) / max(t1 - t0, 1e-9))


def wait_for_quiet(meter, threshold, max_wait):
    """Waits (up to max_wait s) until other processes use less than `threshold` cores."""
    deadline = time.perf_counter() + max_wait
    load = float("nan")
    while True:
        meter.start()
        time.sleep(0.25)
        load = meter.foreign()
        if load < threshold or time.perf_counter() > deadline:
            return load


# ------------------------------------------------------------------------------------------------
# rotary: the only place that knows its Python API


def import_rotary(build_dir, source):
    """The rotary package: `import rotary` (source "installed"), or (source "build") the package
    staged in a temporary directory from this checkout's python/rotary/*.py and the _rotary module of
    a CMake build configured with -DROTARY_BUILD_PYTHON=ON, so that the measured library is the
    checkout's. "auto": installed if importable, else the build."""
    errors = []
    if source in ("auto", "installed"):
        try:
            module = importlib.import_module("rotary")
            return module, f"installed ({os.path.dirname(module.__file__)})"
        except ImportError as error:
            errors.append(f"import rotary: {error}")
    if source in ("auto", "build"):
        modules = glob.glob(os.path.join(build_dir, "python", "_rotary*.so")) + glob.glob(
            os.path.join(build_dir, "_rotary*.so")
        )
        if modules:
            stage = tempfile.mkdtemp(prefix="rotary-stage-")
            package = os.path.join(stage, "rotary")
            shutil.copytree(os.path.join(REPO, "python", "rotary"), package)
            shutil.copy2(modules[0], package)
            sys.path.insert(0, stage)
            sys.modules.pop("rotary", None)
            return importlib.import_module("rotary"), f"built from this checkout ({os.path.relpath(modules[0], REPO)})"
        errors.append(f"no _rotary module under {build_dir}")
    raise SystemExit(
        "rotary is not usable: " + "; ".join(errors) + ". Install it (pip install .) or build "
        "it: cmake -S . -B build-bench -DROTARY_BUILD_PYTHON=ON -DROTARY_BUILD_BENCHMARKS=ON && "
        "cmake --build build-bench -j"
    )


class RotaryAdapter:
    """rotary's Python API for this script: a Rope for a shape, in-place and out-of-place calls."""

    def __init__(self, module):
        self.module = module
        self.has_max_threads = "max_threads" in inspect.signature(module.Rope).parameters
        rotate_parameters = inspect.signature(module.Rope.rotate).parameters
        # The output keywords (the API is young: both spellings it has had).
        self.out_names = ("q_out", "k_out") if "q_out" in rotate_parameters else ("out_q", "out_k")

    def rope(self, shape, threads):
        config = {
            "head_dim": shape.head_dim,
            "hidden_size": shape.head_dim * shape.q_heads,
            "num_attention_heads": shape.q_heads,
            "num_key_value_heads": shape.k_heads,
            "max_position_embeddings": 131072,
            "rope_theta": shape.theta,
            "partial_rotary_factor": shape.rotary_dim / shape.head_dim,
        }
        if shape.layout == "interleaved":
            config["rope_interleave"] = True
        # Prefill: a cos/sin cache covering the call's positions, as an engine would keep one.
        # Decode: positions far past it, cos/sin on the fly.
        cache = 0 if shape.decode else shape.seq
        kwargs = {"angle_mode": "hf", "cache_positions": cache}
        if self.has_max_threads:
            kwargs["max_threads"] = threads
        rope = self.module.Rope(config, **kwargs)
        if rope.rotary_dim != shape.rotary_dim or rope.layout != shape.layout:
            raise RuntimeError(f"rotary config mismatch: {rope!r}")
        return rope

    @staticmethod
    def in_place(rope, q, k, positions):
        return lambda: rope.rotate(q, positions, k=k)

    def out_of_place(self, rope, q, k, q_out, k_out, positions):
        outputs = dict(zip(self.out_names, (q_out, k_out), strict=True))
        return lambda: rope.rotate(q, positions, k=k, **outputs)

    def simd_target(self, build_dir):
        for owner in (self.module, getattr(self.module, "_rotary", None)):
            name = getattr(owner, "simd_target_name", None)
            if callable(name):
                return name()
        binary = os.path.join(build_dir or "", "bench", "rotate_bench")
        if build_dir and os.path.exists(binary):
            out = subprocess.run(
                [
                    binary,
                    "--benchmark_filter=^decode_latency/llama3_8b/float32",
                    "--benchmark_repetitions=1",
                    "--benchmark_min_time=0.01",
                    "--benchmark_format=json",
                ],
                capture_output=True,
                text=True,
            )
            try:
                return json.loads(out.stdout)["context"]["rotary_simd_target"] + " (from bench/rotate_bench)"
            except (ValueError, KeyError):
                pass
        return "unknown (not exposed by the Python package)"


# ------------------------------------------------------------------------------------------------
# Peers


def hf_functions(shape, dtype, positions):
    """(full, apply, cos_sin) for transformers' eager code of the shape's model family.

    full(q, k) and apply(q, k, cos, sin) take the BSHD tensors and return new (q, k) as the
    model's attention forward produces them."""
    if shape.model == "llama":
        from transformers import LlamaConfig
        from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

        config = LlamaConfig(
            hidden_size=shape.head_dim * shape.q_heads,
            num_attention_heads=shape.q_heads,
            num_key_value_heads=shape.k_heads,
            head_dim=shape.head_dim,
            max_position_embeddings=131072,
            rope_parameters={"rope_type": "default", "rope_theta": shape.theta},
        )
        module = LlamaRotaryEmbedding(config)

        def cos_sin(q):
            return module(q, positions)

        def apply(q, k, cos, sin):
            return apply_rotary_pos_emb(q.transpose(1, 2), k.transpose(1, 2), cos, sin)
    elif shape.model == "neox":
        from transformers import GPTNeoXConfig
        from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXRotaryEmbedding, apply_rotary_pos_emb

        config = GPTNeoXConfig(
            hidden_size=shape.head_dim * shape.q_heads,
            num_attention_heads=shape.q_heads,
            rotary_pct=shape.rotary_dim / shape.head_dim,
            rotary_emb_base=shape.theta,
            max_position_embeddings=131072,
        )
        module = GPTNeoXRotaryEmbedding(config)

        def cos_sin(q):
            return module(q, positions)

        def apply(q, k, cos, sin):
            return apply_rotary_pos_emb(q.transpose(1, 2), k.transpose(1, 2), cos, sin)
    elif shape.model == "gptj":
        from transformers.models.gptj.modeling_gptj import apply_rotary_pos_emb, create_sinusoidal_positions

        # GPTJRotaryEmbedding's table, built once per model (here: for the positions used).
        table = create_sinusoidal_positions(int(positions.max()) + 1, shape.rotary_dim)

        def cos_sin(q):
            sincos = table[positions].to(q.dtype)  # GPTJRotaryEmbedding.forward
            return torch.split(sincos, sincos.shape[-1] // 2, dim=-1)  # (sin, cos)

        def apply(q, k, sin, cos):  # GPT-J rotates in (batch, seq, heads, head_dim), then transposes
            return apply_rotary_pos_emb(q, sin, cos).transpose(1, 2), apply_rotary_pos_emb(k, sin, cos).transpose(1, 2)
    else:
        raise ValueError(shape.model)

    def full(q, k):
        a, b = cos_sin(q)
        return apply(q, k, a, b)

    return full, apply, cos_sin


def cos_sin_cache(shape, positions, dtype):
    """ORT's cos_cache/sin_cache: (max_position + 1, rotary_dim / 2), float32 math, cast once."""
    inv_freq = 1.0 / (shape.theta ** (torch.arange(0, shape.rotary_dim, 2, dtype=torch.float32) / shape.rotary_dim))
    angles = torch.arange(int(positions.max()) + 1, dtype=torch.float32)[:, None] * inv_freq
    return torch.cos(angles).to(dtype).contiguous(), torch.sin(angles).to(dtype).contiguous()


ORT_TYPES = {torch.float32: (1, np.float32), torch.float16: (10, np.float16), torch.bfloat16: (16, None)}


def ort_session(kind, shape, dtype, threads):
    """An InferenceSession rotating Q and K (3-d (batch, seq, heads * head_dim) inputs)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    elem = ORT_TYPES[dtype][0]
    half = shape.rotary_dim // 2
    nodes = []
    for name, heads in (("q", shape.q_heads), ("k", shape.k_heads)):
        attrs = {
            "interleaved": int(shape.layout == "interleaved"),
            "num_heads": heads,
            "rotary_embedding_dim": shape.rotary_dim,
        }
        if kind == "contrib":
            nodes.append(
                helper.make_node(
                    "RotaryEmbedding",
                    [name, "position_ids", "cos_cache", "sin_cache"],
                    [name + "_out"],
                    domain="com.microsoft",
                    **attrs,
                )
            )
        else:
            nodes.append(
                helper.make_node(
                    "RotaryEmbedding", [name, "cos_cache", "sin_cache", "position_ids"], [name + "_out"], **attrs
                )
            )
    inputs = [
        helper.make_tensor_value_info("q", elem, ["B", "S", shape.q_heads * shape.head_dim]),
        helper.make_tensor_value_info("k", elem, ["B", "S", shape.k_heads * shape.head_dim]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["B", "S"]),
        helper.make_tensor_value_info("cos_cache", elem, ["M", half]),
        helper.make_tensor_value_info("sin_cache", elem, ["M", half]),
    ]
    outputs = [
        helper.make_tensor_value_info("q_out", elem, ["B", "S", shape.q_heads * shape.head_dim]),
        helper.make_tensor_value_info("k_out", elem, ["B", "S", shape.k_heads * shape.head_dim]),
    ]
    opsets = [helper.make_opsetid("", 23 if kind == "opset23" else 21)]
    if kind == "contrib":
        opsets.append(helper.make_opsetid("com.microsoft", 1))
    model = helper.make_model(helper.make_graph(nodes, "rope", inputs, outputs), opset_imports=opsets)
    model.ir_version = 10
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def ort_call(session, tensors):
    """One run with every input and output bound to the given torch tensors (no copies)."""
    binding = session.io_binding()
    for name, (tensor, direction) in tensors.items():
        np_type = {torch.float32: np.float32, torch.float16: np.float16, torch.int64: np.int64}[tensor.dtype]
        bind = binding.bind_input if direction == "in" else binding.bind_output
        bind(name, "cpu", 0, np_type, list(tensor.shape), tensor.data_ptr())
    return lambda: session.run_with_iobinding(binding)


# ------------------------------------------------------------------------------------------------
# Measurement


@dataclass
class Impl:
    name: str
    mode: str  # "in_place" or "out_of_place"
    fn: object
    times: list = field(default_factory=list)
    calls: int = 1
    note: str = ""
    max_diff: float = float("nan")
    settle_s: float = 0.0  # extra pause after its samples (ORT's pool spins on after a run)

    def median(self):
        return statistics.median(self.times) if self.times else float("nan")


def calibrate(impl, sample_s):
    impl.fn()  # warm-up: first-call work (allocation, compilation caches, page faults)
    start = time.perf_counter()
    calls = 0
    while calls < 2 or time.perf_counter() - start < min(0.05, sample_s):
        impl.fn()
        calls += 1
    per_call = (time.perf_counter() - start) / calls
    impl.calls = max(1, math.ceil(sample_s / per_call))


def measure(impls, repeats, sample_s, gap_s, meter, max_foreign, retries=2):
    """Interleaved rounds; returns the foreign load of the rounds kept."""
    loads = []
    round_index = 0
    redo = 0
    while round_index < repeats:
        order = impls[round_index % len(impls) :] + impls[: round_index % len(impls)]
        meter.start()
        sample = {}
        for impl in order:
            time.sleep(gap_s)
            start = time.perf_counter()
            for _ in range(impl.calls):
                impl.fn()
            sample[impl.name] = (time.perf_counter() - start) / impl.calls
            time.sleep(impl.settle_s)
        load = meter.foreign()
        # The pauses are idle for us and for the load measure alike; what matters is the load.
        if load > max_foreign and redo < retries:
            redo += 1
            continue
        for impl in impls:
            impl.times.append(sample[impl.name])
        loads.append(load)
        round_index += 1
    return loads


def tensor_bytes(shape, dtype, channels):
    return (
        shape.batch
        * shape.seq
        * (shape.q_heads + shape.k_heads)
        * channels
        * torch.tensor([], dtype=dtype).element_size()
    )


@dataclass
class CaseTensors:
    """One case's q/k, the output tensors and positions, shared by every implementation."""

    q: torch.Tensor
    k: torch.Tensor
    q_out: torch.Tensor
    k_out: torch.Tensor
    positions: torch.Tensor
    positions_np: np.ndarray  # converted once, outside the timing


def case_tensors(shape, dtype):
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(shape.batch, shape.seq, shape.q_heads, shape.head_dim, generator=generator).to(dtype)
    k = torch.randn(shape.batch, shape.seq, shape.k_heads, shape.head_dim, generator=generator).to(dtype)
    positions = shape.positions()
    return CaseTensors(q, k, torch.empty_like(q), torch.empty_like(k), positions, positions.numpy())


def limit_impls(shape, t):
    """The memory limits, over the same tensors.

    In place: the rotated channels' bytes taken as float32 (a 16-bit mul_ would convert and round,
    compute-bound; x * 1.0 leaves every bit as it was)."""
    rot = shape.rotary_dim
    q_rot, k_rot = (t.q, t.k) if rot == shape.head_dim else (t.q[..., :rot], t.k[..., :rot])
    q_words, k_words = q_rot.view(torch.float32), k_rot.view(torch.float32)

    def scale():
        q_words.mul_(1.0)
        k_words.mul_(1.0)

    def copy():
        t.q_out.copy_(t.q)
        t.k_out.copy_(t.k)

    return [
        Impl("limit: mul_(1.0) in place", "in_place", scale),  # on float32 views
        Impl("limit: copy_", "out_of_place", copy),
    ]


def rotary_impls(rotary_api, rope, t):
    return [
        Impl("rotary in place", "in_place", rotary_api.in_place(rope, t.q, t.k, t.positions_np)),
        Impl(
            "rotary out of place",
            "out_of_place",
            rotary_api.out_of_place(rope, t.q, t.k, t.q_out, t.k_out, t.positions_np),
        ),
    ]


def hf_impls(shape, dtype, t, args, compile_state):
    """transformers, eager and compiled: (impls, skipped)."""
    q, k = t.q, t.k
    full, apply, cos_sin = hf_functions(shape, dtype, t.positions)
    precomputed = cos_sin(q)
    family = {"llama": "Llama", "neox": "GPT-NeoX", "gptj": "GPT-J"}[shape.model]
    impls = [
        Impl(f"hf eager full ({family})", "out_of_place", lambda: full(q, k)),
        Impl(f"hf eager apply ({family})", "out_of_place", lambda: apply(q, k, *precomputed)),
    ]
    if args.no_compile:
        return impls, [("hf compile", "--no-compile")]
    if compile_state.get("broken"):
        return impls, [("hf compile", compile_state["broken"])]
    compiled, skipped = compiled_hf_impls(
        family, (("full", full, (q, k)), ("apply", apply, (q, k, *precomputed))), compile_state
    )
    return impls + compiled, skipped


def compiled_hf_impls(family, functions, compile_state):
    """torch.compile of each (label, fn, call_args), compiled by a first call outside the timings.

    The first failure marks compiling as broken (recorded in compile_state) for every later case."""
    impls, skipped = [], []
    for label, fn, call_args in functions:
        try:
            compiled = torch.compile(fn, dynamic=False)
            started = time.perf_counter()
            compiled(*call_args)
            compile_state["seconds"] = compile_state.get("seconds", 0.0) + time.perf_counter() - started
            impls.append(
                Impl(
                    f"hf compile {label} ({family})",
                    "out_of_place",
                    (lambda c, a: lambda: c(*a))(compiled, call_args),
                )
            )
        except Exception as error:  # noqa: BLE001 - any failure to compile means "skip"
            reason = f"{type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}"
            compile_state["broken"] = reason
            skipped.append((f"hf compile {label}", reason))
            break
    return impls, skipped


def ort_impls(shape, dtype, dtype_name, threads, args, t):
    """ONNX Runtime's two RotaryEmbedding operators, bound to the case's tensors: (impls, skipped)."""
    if ORT_TYPES[dtype][1] is None:
        return [], [("ort", f"{dtype_name}: no CPU kernel for RotaryEmbedding in onnxruntime")]
    impls, skipped = [], []
    cos_cache, sin_cache = cos_sin_cache(shape, t.positions, dtype)
    bound = {
        "q": (t.q.view(shape.batch, shape.seq, -1), "in"),
        "k": (t.k.view(shape.batch, shape.seq, -1), "in"),
        "position_ids": (t.positions, "in"),
        "cos_cache": (cos_cache, "in"),
        "sin_cache": (sin_cache, "in"),
        "q_out": (t.q_out.view(shape.batch, shape.seq, -1), "out"),
        "k_out": (t.k_out.view(shape.batch, shape.seq, -1), "out"),
    }
    for kind, label in (
        ("contrib", "ort com.microsoft RotaryEmbedding"),
        ("opset23", "ort opset-23 RotaryEmbedding"),
    ):
        try:
            impls.append(Impl(label, "out_of_place", ort_call(ort_session(kind, shape, dtype, threads), bound)))
            impls[-1].keepalive = (cos_cache, sin_cache)
            # ORT's intra-op pool (default options: spinning allowed) keeps its threads spinning
            # for tens of ms after a run, which would slow whatever runs next on 2 cores.
            impls[-1].settle_s = args.ort_settle_ms / 1000 if threads > 1 else 0.0
        except Exception as error:  # noqa: BLE001
            skipped.append((label, f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"))
    return impls, skipped


def check_against_rotary(impls, rotary_api, rope, t):
    """Sets each peer's max_diff: its out-of-place result against rotary's, from the same inputs.

    Runs before any in-place call changes q and k. HF's 16-bit code rounds after every operation,
    so it differs by a few 16-bit ulps."""
    rotary_api.out_of_place(rope, t.q, t.k, t.q_out, t.k_out, t.positions_np)()
    reference = (t.q_out.clone(), t.k_out.clone())
    for impl in impls:
        if impl.mode != "out_of_place" or impl.name.startswith("limit") or impl.name.startswith("rotary"):
            continue
        result = impl.fn()
        if impl.name.startswith("ort"):
            result = (t.q_out, t.k_out)
        got_q = result[0].transpose(1, 2) if result[0].shape != t.q.shape else result[0]
        got_k = result[1].transpose(1, 2) if result[1].shape != t.k.shape else result[1]
        impl.max_diff = max(
            (got_q.float() - reference[0].float()).abs().max().item(),
            (got_k.float() - reference[1].float()).abs().max().item(),
        )


def time_impls(impls, shape, threads, args, meter):
    """Calibrates and times every implementation; returns the foreign load of the rounds kept."""
    wait_for_quiet(meter, args.max_foreign_load, 5.0)
    sample_s = args.sample_ms / 1000
    for impl in impls:
        calibrate(impl, sample_s)
    repeats = args.repeats_long if shape.name == "prefill_long" else args.repeats
    return measure(impls, repeats, sample_s, args.gap_ms / 1000 if threads > 1 else 0.002, meter, args.max_foreign_load)


def result_rows(impls, in_bytes, out_bytes):
    """One row per implementation: its median, bandwidth, % of its mode's limit, rotary's speedups."""
    rows = []
    by_name = {impl.name: impl for impl in impls}
    limit = {
        "in_place": by_name["limit: mul_(1.0) in place"].median(),
        "out_of_place": by_name["limit: copy_"].median(),
    }
    rot_in = by_name["rotary in place"].median()
    rot_out = by_name["rotary out of place"].median()
    for impl in impls:
        t = impl.median()
        counted = in_bytes if impl.mode == "in_place" else out_bytes
        rows.append(
            {
                "impl": impl.name,
                "mode": impl.mode,
                "median_us": t * 1e6,
                "gbps": counted / t / 1e9,
                "pct_limit": 100 * limit[impl.mode] / t,
                "speedup_in_place": t / rot_in,
                "speedup_out_of_place": t / rot_out,
                "calls_per_sample": impl.calls,
                "samples": len(impl.times),
                "max_diff": impl.max_diff,
            }
        )
    return rows


def run_case(shape, dtype_name, threads, args, rotary_api, meter, compile_state, log):
    """Every implementation on one shape x dtype x thread count: built, checked, timed, summed up."""
    dtype = DTYPES[dtype_name]
    torch.set_num_threads(threads)
    t = case_tensors(shape, dtype)
    impls = limit_impls(shape, t)
    rope = rotary_api.rope(shape, threads)
    impls += rotary_impls(rotary_api, rope, t)
    hf, hf_skipped = hf_impls(shape, dtype, t, args, compile_state)
    ort, ort_skipped = ort_impls(shape, dtype, dtype_name, threads, args, t)
    impls += hf + ort
    check_against_rotary(impls, rotary_api, rope, t)
    loads = time_impls(impls, shape, threads, args, meter)
    in_bytes = tensor_bytes(shape, dtype, shape.rotary_dim) * 2
    out_bytes = tensor_bytes(shape, dtype, shape.head_dim) * 2
    rows = result_rows(impls, in_bytes, out_bytes)
    result = {
        "shape": shape.name,
        "dtype": dtype_name,
        "threads": threads,
        "rows": rows,
        "skipped": hf_skipped + ort_skipped,
        "foreign_load_median": statistics.median(loads),
        "foreign_load_max": max(loads),
        "in_place_bytes": in_bytes,
        "out_of_place_bytes": out_bytes,
    }
    log(
        f"  {shape.name:15s} {dtype_name:4s} threads={threads}: rotary in place {rows[2]['gbps']:.1f} GB/s "
        f"({rows[2]['pct_limit']:.0f}% of limit), out of place {rows[3]['gbps']:.1f} GB/s "
        f"({rows[3]['pct_limit']:.0f}%); foreign load {result['foreign_load_median']:.2f}"
    )
    return result


# ------------------------------------------------------------------------------------------------
# Python decode call: one token through each Python API, the whole call timed


def decode_call_tensors(shape, dtype, numpy_arrays=False):
    """q (1, 1, 32, 128) and k (1, 1, 8, 128), BSHD, as torch tensors or NumPy arrays."""
    generator = torch.Generator().manual_seed(1)
    q = torch.randn(shape.batch, shape.seq, shape.q_heads, shape.head_dim, generator=generator).to(dtype)
    k = torch.randn(shape.batch, shape.seq, shape.k_heads, shape.head_dim, generator=generator).to(dtype)
    return (q.numpy(), k.numpy()) if numpy_arrays else (q, k)


def rotary_decode_calls(rotary_api, shape):
    """rotary.Rope.rotate in place on NumPy arrays and torch tensors, 3-d (shd) and 4-d (bshd)."""
    rope = rotary_api.rope(shape, 1)
    positions = shape.positions().numpy()  # (1, 1): transformers' position_ids for one token
    calls = []
    for tensors, dtype_names in (("NumPy", ("f32", "f16")), ("torch", ("f32", "f16", "bf16"))):
        for dtype_name in dtype_names:
            q, k = decode_call_tensors(shape, DTYPES[dtype_name], numpy_arrays=tensors == "NumPy")
            calls.append((f"rotary {tensors}", "shd", dtype_name, rotary_api.in_place(rope, q[0], k[0], positions[0])))
            calls.append((f"rotary {tensors}", "bshd", dtype_name, rotary_api.in_place(rope, q, k, positions)))
    return calls


def peer_decode_calls(shape):
    """ORT's com.microsoft RotaryEmbedding through IOBinding (bound once, run per call), and
    transformers' Llama code: apply_rotary_pos_emb with cos/sin computed beforehand, and the full
    step (the rotary embedding module's forward + the apply). Both write new tensors."""
    positions = shape.positions()
    calls = []
    for dtype_name in ("f32", "f16"):
        dtype = DTYPES[dtype_name]
        q, k = decode_call_tensors(shape, dtype)
        cos_cache, sin_cache = cos_sin_cache(shape, positions, dtype)
        flat = {name: t.view(shape.batch, shape.seq, -1) for name, t in (("q", q), ("k", k))}
        bound = {
            "q": (flat["q"], "in"),
            "k": (flat["k"], "in"),
            "position_ids": (positions, "in"),
            "cos_cache": (cos_cache, "in"),
            "sin_cache": (sin_cache, "in"),
            "q_out": (torch.empty_like(flat["q"]), "out"),
            "k_out": (torch.empty_like(flat["k"]), "out"),
        }
        run = ort_call(ort_session("contrib", shape, dtype, 1), bound)
        run.keepalive = bound  # the binding holds raw pointers into these tensors
        calls.append(("ort contrib, IOBinding", "bsd", dtype_name, run))
    for dtype_name in ("f32", "f16", "bf16"):
        q, k = decode_call_tensors(shape, DTYPES[dtype_name])
        full, apply, cos_sin = hf_functions(shape, DTYPES[dtype_name], positions)
        cos, sin = cos_sin(q)
        calls.append(("hf apply_rotary_pos_emb", "bhsd", dtype_name, bind_call(apply, q, k, cos, sin)))
        calls.append(("hf rotary module + apply", "bhsd", dtype_name, bind_call(full, q, k)))
    return calls


def bind_call(fn, *call_args):
    return lambda: fn(*call_args)


def decode_call_timings(rotary_api, args):
    """Min and median µs per call of every decode call, 1 thread, timed in interleaved rounds of
    timeit samples (each >= --decode-call-sample-ms)."""
    shape = SHAPES["decode"]
    torch.set_num_threads(1)
    calls = rotary_decode_calls(rotary_api, shape) + peer_decode_calls(shape)
    numbers = []
    for *_, fn in calls:
        fn()  # warm-up
        per_call = min(timeit.repeat(fn, number=200, repeat=3)) / 200
        numbers.append(max(1, int(args.decode_call_sample_ms / 1000 / per_call)))
    samples = [[] for _ in calls]
    for _ in range(args.decode_call_rounds):
        for (*_, fn), number, times in zip(calls, numbers, samples, strict=True):
            times.append(timeit.timeit(fn, number=number) / number * 1e6)
    return [
        {
            "impl": name,
            "layout": layout,
            "dtype": dtype_name,
            "min_us": min(times),
            "median_us": statistics.median(times),
            "calls_per_sample": number,
            "samples": len(times),
        }
        for (name, layout, dtype_name, _), number, times in zip(calls, numbers, samples, strict=True)
    ]


# ------------------------------------------------------------------------------------------------
# Report


def fmt(x, digits=1):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.{digits}f}"


def gbench_section(path, seconds=None):
    """Markdown for a rotate_bench JSON output (--benchmark_out=FILE --benchmark_out_format=json)."""
    with open(path) as f:
        data = json.load(f)
    context = data["context"]
    medians = [b for b in data["benchmarks"] if b.get("aggregate_name") == "median"]
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}
    out = ["## C++: bench/rotate_bench (Google Benchmark)\n"]
    out.append(
        f"- Run: {context.get('date')}, {context.get('executable')}"
        f"{f' ({seconds:.0f} s)' if seconds else ''}; load average at start: "
        f"{' '.join(f'{x:.2f}' for x in context.get('load_avg', []))}"
    )
    pinned = context.get("rotary_simd_target_pinned", "no")
    out.append(f"- SIMD target: {context.get('rotary_simd_target')} (pinned: {pinned}); CPU: {context.get('cpu')}")
    out.append(f"- Bytes: {context.get('bytes_counted')}")
    out.append(
        '- Medians of the repetitions (`--benchmark_repetitions`); "limit GB/s" is the paired limit of each '
        'row (measured right after it on the same bytes), "other CPUs" the cores other processes kept '
        "busy during the row (/proc/stat): rows with more than a few tenths were disturbed.\n"
    )
    rotary_rows = {}
    out.append(
        "| shape | dtype | layout | mode | angles | threads | µs per call | GB/s | limit GB/s | % of limit | "
        "2 threads / 1 thread time | other CPUs |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for b in medians:
        parts = b["run_name"].split("/")
        if parts[0] != "rotary":
            continue
        shape, dtype, layout, mode, threads, angles = parts[1:7]
        rotary_rows[(shape, dtype, layout, mode, angles, threads)] = b
    for (shape, dtype, layout, mode, angles, threads), b in rotary_rows.items():
        t = b["real_time"] * scale[b["time_unit"]]
        ratio = "—"
        if threads == "threads:2":
            one = rotary_rows.get((shape, dtype, layout, mode, angles, "threads:1"))
            if one:
                ratio = f"{t / (one['real_time'] * scale[one['time_unit']]):.2f}"
        out.append(
            f"| {shape} | {dtype} | {layout} | {mode.replace('_', ' ')} | {angles.split(':')[1]} | "
            f"{threads.split(':')[1]} | {t:.2f} | {b['GB/s']:.1f} | {b.get('limit_GB/s', float('nan')):.1f} | "
            f"{b.get('pct_of_limit', float('nan')):.0f}% | {ratio} | {b.get('other_cpus', float('nan')):.2f} |"
        )
    out.append(
        "\n### Decode latency: one Llama-3-8B token (32 Q + 8 KV heads × 128), position 123457, angles on "
        "the fly, in place, 1 thread\n"
    )
    out.append("| dtype | ns per call | other CPUs |")
    out.append("|---|---|---|")
    for b in medians:
        if b["run_name"].startswith("decode_latency/"):
            ns = b["real_time"] * scale[b["time_unit"]] * 1e3
            out.append(f"| {b['run_name'].split('/')[2]} | {ns:.0f} | {b.get('other_cpus', float('nan')):.2f} |")
    out.append("\n### The limits on their own\n")
    out.append("| limit | µs per call | GB/s | other CPUs |")
    out.append("|---|---|---|---|")
    for b in medians:
        if b["run_name"].startswith("limit/"):
            t = b["real_time"] * scale[b["time_unit"]]
            out.append(
                f"| {b['run_name'].removesuffix('/real_time')} | {t:.2f} | {b['GB/s']:.1f} | "
                f"{b.get('other_cpus', float('nan')):.2f} |"
            )
    return "\n".join(out) + "\n"


def report_header(meta):
    """The report's title and the run's context: date, command, library, machine, versions, method."""
    out = ["# rotary on the CPU: limits and peers\n"]
    add = out.append
    add(f"- Date: {meta['date']}")
    add(f"- Command: `{meta['command']}` ({meta['elapsed_s']:.0f} s)")
    add(
        f"- Library: commit `{meta['commit']}`"
        f"{' (with uncommitted changes in src/include/python)' if meta['dirty'] else ''}; "
        f"rotary Python package {meta['rotary_source']}; SIMD target: {meta['simd']}; "
        f"max_threads passed: {'yes' if meta['max_threads'] else 'no (OpenMP default)'}"
    )
    add(f"- CPU: {meta['cpu_model']}, {meta['cpus']} logical CPUs; flags: {' '.join(meta['cpu_flags'])}")
    add(
        f"- Versions: Python {meta['python']}, torch {meta['torch']}, transformers {meta['transformers']}, "
        f"onnxruntime {meta['onnxruntime']}, onnx {meta['onnx']}, numpy {meta['numpy']}"
    )
    add(
        f"- Threads: {', '.join(map(str, meta['threads']))} (torch.set_num_threads, ORT intra_op_num_threads, "
        f"rotary max_threads). Medians of {meta['repeats']} interleaved rounds ({meta['repeats_long']} for "
        f"prefill_long), samples of >= {meta['sample_ms']} ms. Load average at start: {meta['loadavg']}"
    )
    add(
        "- Bytes per call, read once + written once: in place 2 x rotated bytes, out of place 2 x tensor "
        "bytes. GB/s = 1e9 B/s. % limit: against torch `view(float32).mul_(1.0)` on the same bytes (in place) or "
        "`copy_` of the same tensors (out of place), same rounds. Speedup = peer median time / rotary "
        "median time (in place; out of place)."
    )
    if meta.get("compile_seconds"):
        add(f"- torch.compile: {meta['compile_seconds']:.0f} s of compilation in total (outside the timings)")
    add("")
    return out


def summary_speedup(rows, name):
    """Rotary's speedups over one peer, in place / out of place; — when the peer did not run."""
    row = rows.get(name)
    if not row:
        return "—"
    return f"{row['speedup_in_place']:.1f}× / {row['speedup_out_of_place']:.1f}×"


def summary_row(r):
    rows = {row["impl"].split(" (")[0]: row for row in r["rows"]}  # peer names without the model family
    peers = (
        "hf eager full",
        "hf eager apply",
        "hf compile apply",
        "ort com.microsoft RotaryEmbedding",
        "ort opset-23 RotaryEmbedding",
    )
    speedups = " | ".join(summary_speedup(rows, name) for name in peers)
    ri, ro = rows["rotary in place"], rows["rotary out of place"]
    return (
        f"| {r['shape']} | {r['dtype']} | {r['threads']} | {fmt(ri['gbps'])} | {fmt(ri['pct_limit'], 0)}% | "
        f"{fmt(ro['gbps'])} | {fmt(ro['pct_limit'], 0)}% | {speedups} | {r['foreign_load_median']:.2f} |"
    )


def summary_section(results):
    """One line per case: rotary's bandwidth, its share of the limits and its speedups over each peer."""
    out = ["## Summary: rotary\n"]
    out.append(
        "| shape | dtype | threads | in place GB/s | % of mul_ limit | out of place GB/s | % of copy limit | "
        "vs eager full | vs eager apply | vs compile apply | vs ORT contrib | vs ORT op23 | other load |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    out += [summary_row(r) for r in results]
    out.append("\nSpeedups are given as (rotary in place) / (rotary out of place); — = not run (see the details).\n")
    return out


def details_row(row):
    speed = (
        "—"
        if row["impl"].startswith(("limit", "rotary"))
        else f"{row['speedup_in_place']:.2f}× / {row['speedup_out_of_place']:.2f}×"
    )
    return (
        f"| {row['impl']} | {row['mode'].replace('_', ' ')} | {fmt(row['median_us'], 2)} | "
        f"{fmt(row['gbps'])} | {fmt(row['pct_limit'], 0)}% | {speed} | "
        f"{fmt(row['max_diff'], 4) if not math.isnan(row['max_diff']) else '—'} |"
    )


def details_case(r):
    """One case in full: the bytes counted, the load seen, every implementation, what was not run."""
    out = [f"### {r['shape']}, {r['dtype']}, {r['threads']} thread{'s' if r['threads'] > 1 else ''}\n"]
    out.append(
        f"In place counts {r['in_place_bytes'] / 1e6:.2f} MB per call, out of place "
        f"{r['out_of_place_bytes'] / 1e6:.2f} MB. Other processes' load: median "
        f"{r['foreign_load_median']:.2f}, max {r['foreign_load_max']:.2f} cores.\n"
    )
    out.append(
        "| implementation | mode | median µs | GB/s | % limit | rotary speedup (in place / out of place) | "
        "max abs diff vs rotary |"
    )
    out.append("|---|---|---|---|---|---|---|")
    out += [details_row(row) for row in r["rows"]]
    out += [f"\nNot run: {name}: {reason}" for name, reason in r["skipped"]]
    out.append("")
    return out


def decode_call_section(rows, meta):
    """The Python decode call: each API's whole call for one token, min and median µs."""
    out = ["## Python decode call: one token, the whole call from Python\n"]
    out.append(
        f"One Llama-3-8B decode step (q (1, 1, 32, 128), k (1, 1, 8, 128), position 123457, cos/sin "
        f"on the fly where the API computes them), 1 thread, on {meta['cpu_model']}. Each sample is "
        "`timeit` of many calls; min and median over the samples. rotary: `Rope.rotate(q, positions, k)` "
        "in place (shd: the 3-d (1, 32, 128) tensors, bshd: the 4-d ones). ORT: the com.microsoft "
        "RotaryEmbedding session with q, k, position_ids, cos/sin caches and outputs bound once "
        "(IOBinding), `run_with_iobinding` per call (out of place; no bfloat16 kernel). transformers: "
        "Llama's `apply_rotary_pos_emb` on the (batch, heads, seq, head_dim) views with cos/sin computed "
        "beforehand, and with the rotary embedding module's forward (out of place). "
        "× rotary: median over rotary torch bshd's median in the same dtype.\n"
    )
    out.append("| call | layout | dtype | min µs | median µs | × rotary |")
    out.append("|---|---|---|---|---|---|")
    reference = {r["dtype"]: r["median_us"] for r in rows if r["impl"] == "rotary torch" and r["layout"] == "bshd"}
    for r in rows:
        ratio = r["median_us"] / reference[r["dtype"]] if r["dtype"] in reference else float("nan")
        out.append(
            f"| {r['impl']} | {r['layout']} | {r['dtype']} | {r['min_us']:.2f} | {r['median_us']:.2f} | "
            f"{fmt(ratio, 2)} |"
        )
    out.append("")
    return out


def report(results, meta):
    """The markdown report: the run's context, rotary's summary, the Python decode call, the C++
    medians, every case in detail."""
    out = report_header(meta)
    runs = meta.get("gbench_runs") or []
    out += targets_section(
        [(label, path) for label, path, _ in runs],
        meta.get("decode_call"),
        os.path.join(REPO, "bench", "callgrind-baseline.txt"),
    )
    out += summary_section(results)
    if meta.get("decode_call"):
        out += decode_call_section(meta["decode_call"], meta)
    for _, path, seconds in runs:
        out.append(gbench_section(path, seconds))
    out.append("## Details\n")
    for r in results:
        out += details_case(r)
    out.append("<details><summary>All CPU flags</summary>\n")
    out.append(" ".join(meta["all_flags"]))
    out.append("\n</details>")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------------


def add_case_options(parser):
    """Which cases run, and how each is timed."""
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated, from: " + ", ".join(SHAPES))
    parser.add_argument("--dtypes", default="f32,f16,bf16")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=7, help="rounds per case (default %(default)s)")
    parser.add_argument("--repeats-long", type=int, default=5, help="rounds for prefill_long")
    parser.add_argument("--sample-ms", type=float, default=20.0, help="minimum duration of one sample")
    parser.add_argument(
        "--gap-ms",
        type=float,
        default=20.0,
        help="pause before each multi-threaded sample (lets spinning worker threads sleep)",
    )
    parser.add_argument(
        "--ort-settle-ms",
        type=float,
        default=200.0,
        help="pause after each multi-threaded ORT sample: its pool spins on after a run",
    )
    parser.add_argument(
        "--decode-call-rounds",
        type=int,
        default=31,
        help="rounds of the Python decode call section; 0 skips it (default %(default)s)",
    )
    parser.add_argument("--decode-call-sample-ms", type=float, default=5.0, help="one decode call sample")
    parser.add_argument(
        "--max-foreign-load",
        type=float,
        default=0.3,
        help="re-run a round (twice at most) when other processes kept more cores busy",
    )


def add_gbench_options(parser):
    """The C++ benchmark (bench/rotate_bench) run first, or its output read, for the report."""
    parser.add_argument(
        "--gbench",
        metavar="BINARY",
        help="first run this rotate_bench binary (C++ side: "
        "limits, rotary, decode latency) and report its medians in the markdown",
    )
    parser.add_argument(
        "--gbench-args", default="", help='extra arguments for --gbench, e.g. "--benchmark_filter=prefill"'
    )
    parser.add_argument(
        "--gbench-json",
        help="report this existing rotate_bench JSON output "
        "(--benchmark_out=FILE --benchmark_out_format=json) instead of running --gbench",
    )
    parser.add_argument(
        "--gbench-targets",
        default="best",
        help="comma-separated SIMD targets to run --gbench on: 'best' (this CPU's dispatch) and/or "
        "Highway target names passed as --rotary_target, e.g. best,AVX2 (default %(default)s)",
    )


def build_parser():
    # The options are added in the order --help lists them.
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="prefill (1024 tokens) and decode, f32 and bf16, 1 thread, 3 rounds: a smoke test of every code path",
    )
    parser.add_argument("--out", help="write the markdown report here (also printed)")
    parser.add_argument("--json", help="write the raw results as JSON here")
    parser.add_argument(
        "--rotary-build",
        default=os.path.join(REPO, "build-bench"),
        help="CMake build directory with the Python module (-DROTARY_BUILD_PYTHON=ON), "
        "used when `import rotary` fails (default: %(default)s)",
    )
    parser.add_argument(
        "--rotary-from",
        choices=("auto", "installed", "build"),
        default="auto",
        help="which rotary package: the installed one, the one in --rotary-build, or the "
        "installed one when importable (default %(default)s)",
    )
    add_case_options(parser)
    add_gbench_options(parser)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    return parser


def selected_cases(args):
    """(shapes, dtypes, threads) to run; --quick replaces them (and shortens prefill and the timing)."""
    shapes = [s for s in args.shapes.split(",") if s]
    dtypes = [d for d in args.dtypes.split(",") if d]
    threads = [int(t) for t in args.threads.split(",") if t]
    if args.quick:
        SHAPES["prefill"] = Shape("prefill", 1, 1024, 32, 8, 128, 128, "half_split", 500000.0, "llama")
        shapes, dtypes, threads = ["prefill", "decode"], ["f32", "bf16"], [1]
        args.repeats = min(args.repeats, 3)
        args.sample_ms = min(args.sample_ms, 10.0)
    return shapes, dtypes, threads


def run_gbench(args):
    """Runs --gbench once per --gbench-targets entry, each into a temporary JSON file; returns
    [(target label, JSON path, seconds)]. An existing --gbench-json is reported as it is.

    The C++ side first, alone on the machine (nothing of this process runs meanwhile)."""
    if args.gbench_json:
        return [("best", args.gbench_json, None)]
    if not args.gbench:
        return []
    runs = []
    for target in [t for t in args.gbench_targets.split(",") if t]:
        path = os.path.join(tempfile.mkdtemp(prefix="rotate-bench-"), f"rotate_bench-{target}.json")
        print(f"running {args.gbench} (target {target}) ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        pin = [] if target == "best" else [f"--rotary_target={target}"]
        subprocess.run(
            [
                args.gbench,
                f"--benchmark_out={path}",
                "--benchmark_out_format=json",
                *pin,
                *shlex.split(args.gbench_args),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        runs.append((target, path, time.perf_counter() - started))
    return runs


def peer_versions():
    """Imports the peers' packages (a missing one stops the run here) and returns their versions."""
    import onnx
    import onnxruntime
    import transformers

    return {"transformers": transformers.__version__, "onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}


def run_metadata(args, command, threads, rotary_api, rotary_source, peers, gbench_runs):
    """What the report says about the run: library, machine, versions, settings."""
    model, flags, all_flags = cpu_description()
    commit, dirty = git_state()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "commit": commit,
        "dirty": bool(dirty),
        "rotary_source": rotary_source,
        "simd": rotary_api.simd_target(args.rotary_build),
        "max_threads": rotary_api.has_max_threads,
        "cpu_model": model,
        "cpu_flags": flags,
        "all_flags": all_flags,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        **peers,  # transformers, onnxruntime, onnx
        "numpy": np.__version__,
        "threads": threads,
        "repeats": args.repeats,
        "repeats_long": args.repeats_long,
        "sample_ms": args.sample_ms,
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "gbench_runs": gbench_runs,
    }


def log_progress(message):
    """Progress goes to stderr: stdout carries the report alone."""
    print(message, file=sys.stderr, flush=True)


def run_cases(shapes, dtypes, threads, args, rotary_api, compile_state):
    """Every case's result, sorted by --shapes, --dtypes, then thread count; failed cases are logged, left out."""
    meter = LoadMeter()
    results = []
    # Thread count outermost: torch.compile recompiles per thread count anyway (a guard on it).
    for n in threads:
        for shape_name in shapes:
            for dtype_name in dtypes:
                try:
                    results.append(
                        run_case(
                            SHAPES[shape_name], dtype_name, n, args, rotary_api, meter, compile_state, log_progress
                        )
                    )
                except Exception:  # noqa: BLE001 - report the case and go on
                    log_progress(f"  {shape_name} {dtype_name} threads={n}: FAILED\n{traceback.format_exc()}")
    order = {name: i for i, name in enumerate(shapes)}
    results.sort(key=lambda r: (order[r["shape"]], dtypes.index(r["dtype"]), r["threads"]))
    return results


def write_outputs(args, text, meta, results):
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)


def main():
    args = build_parser().parse_args()
    shapes, dtypes, threads = selected_cases(args)
    started = time.perf_counter()
    command = "python3 " + " ".join([os.path.relpath(sys.argv[0], REPO)] + [shlex.quote(a) for a in sys.argv[1:]])
    gbench_runs = run_gbench(args)
    rotary_module, rotary_source = import_rotary(args.rotary_build, args.rotary_from)
    rotary_api = RotaryAdapter(rotary_module)
    peers = peer_versions()

    torch._dynamo.config.cache_size_limit = 1024
    torch._dynamo.config.accumulated_cache_size_limit = 4096

    meta = run_metadata(args, command, threads, rotary_api, rotary_source, peers, gbench_runs)
    log_progress(f"rotary ({rotary_source}), SIMD target {meta['simd']}; commit {meta['commit'][:12]}")
    compile_state = {}
    results = run_cases(shapes, dtypes, threads, args, rotary_api, compile_state)
    if args.decode_call_rounds > 0:
        log_progress("python decode call ...")
        meta["decode_call"] = decode_call_timings(rotary_api, args)
    meta["elapsed_s"] = time.perf_counter() - started
    meta["compile_seconds"] = compile_state.get("seconds", 0.0)
    if compile_state.get("broken"):
        meta["compile_broken"] = compile_state["broken"]
    write_outputs(args, text=report(results, meta), meta=meta, results=results)
    log_progress(f"done in {meta['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
