"""The performance targets, each with the value this run measured, the ratio to the target and
whether it is met: the "Targets" section of bench/results-cpu.md (written by compare_peers.py).

The targets:
  prefill in place       >= 90 % of the same-run in-place limit (cos/sin from a cache), every
                         dtype and layout, 1 and 2 threads, every SIMD target measured
  prefill out of place   >= 90 % of the same-run memcpy limit
  prefill, on the fly    in place >= 85 % of the limit with cos/sin computed per token
  C++ decode             one token (32 + 8 heads x 128, angles on the fly) <= 0.30 us
  fused KV append        KvCache::append at decode runs no more instructions than rotate-then-copy
                         (bench/callgrind-baseline.txt: instruction counts, not times)
  Python decode          one Rope.rotate call <= 2 us on NumPy, <= 3 us on torch, and below ONNX
                         Runtime's RotaryEmbedding through IOBinding
  fused QK-norm          rms_norm_rotate >= 1.6x the norm pass followed by Rope::rotate
"""

import json
import os

SCALE_US = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}
PREFILL_SHAPES = ("prefill", "interleaved")  # rotate_bench's 4096-token Llama-3-8B shapes


def _medians(path):
    with open(path) as f:
        data = json.load(f)
    return data["context"], [b for b in data["benchmarks"] if b.get("aggregate_name") == "median"]


def _met(ok):
    return "met" if ok else "**not met**"


def _prefill_cells(medians):
    """{(dtype, layout, mode, angles, threads): % of limit} of the prefill rows."""
    cells = {}
    for b in medians:
        parts = b["run_name"].split("/")
        if parts[0] != "rotary" or parts[1] not in PREFILL_SHAPES:
            continue
        _, _, dtype, layout, mode, threads, angles = parts[:7]
        cells[(dtype, layout, mode, angles.split(":")[1], threads.split(":")[1])] = b.get("pct_of_limit")
    return cells


def prefill_rows(label, medians):
    """One row per dtype x layout: % of the limit per mode/angles/threads, cells under target in bold."""
    cells = _prefill_cells(medians)
    columns = [
        ("in_place", "cache", 90),
        ("out_of_place", "cache", 90),
        ("in_place", "otf", 85),
    ]
    rows, misses, total = [], 0, 0
    for dtype in ("float32", "float16", "bfloat16"):
        for layout in ("half_split", "interleaved"):
            line = [label, dtype, layout]
            for mode, angles, target in columns:
                for threads in ("1", "2"):
                    pct = cells.get((dtype, layout, mode, angles, threads))
                    if pct is None:
                        line.append("—")
                        continue
                    total += 1
                    misses += pct < target
                    line.append(f"{pct:.0f} %" if pct >= target else f"**{pct:.0f} %**")
            if len(line) > 3 and any(cell != "—" for cell in line[3:]):
                rows.append("| " + " | ".join(line) + " |")
    return rows, misses, total


def decode_rows(label, medians):
    rows = []
    for b in medians:
        if b["run_name"].startswith("decode_latency/"):
            us = b["real_time"] * SCALE_US[b["time_unit"]]
            dtype = b["run_name"].split("/")[2]
            rows.append(
                f"| C++ decode, {dtype}, {label} | {us:.2f} µs | ≤ 0.30 µs | {us / 0.30:.2f}× | {_met(us <= 0.30)} |"
            )
    return rows


def qk_norm_rows(medians):
    times = {}
    for b in medians:
        name = b["run_name"]
        if name.startswith("qk_norm/"):
            times[name] = b["real_time"] * SCALE_US[b["time_unit"]]
    rows = []
    for name, fused in sorted(times.items()):
        if not name.startswith("qk_norm/fused/"):
            continue
        unfused = times.get(name.replace("/fused/", "/unfused/"))
        if unfused:
            speedup = unfused / fused
            what = name.removeprefix("qk_norm/fused/").removesuffix("/real_time")
            rows.append(
                f"| fused QK-norm + RoPE, {what} | {speedup:.2f}× the unfused | ≥ 1.6× | "
                f"{speedup / 1.6:.2f}× | {_met(speedup >= 1.6)} |"
            )
    return rows


def callgrind_rows(baseline_path):
    """Append against rotate-then-copy, from the committed instruction counts."""
    counts = {}
    if not os.path.exists(baseline_path):
        return []
    with open(baseline_path) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                name, ir = line.split()[:2]
                counts[name] = int(ir)
    rows = []
    for dtype in ("f32", "f16", "bf16"):
        append, copy = counts.get(f"decode1_{dtype}_append_paged"), counts.get(f"decode1_{dtype}_rotate_then_copy")
        if append and copy:
            rows.append(
                f"| KvCache::append at decode, {dtype} (callgrind Ir) | {append:,} | ≤ rotate-then-copy {copy:,} | "
                f"{append / copy:.3f}× | {_met(append <= copy)} |"
            )
    return rows


def python_decode_rows(decode_call):
    medians = {(r["impl"], r["layout"], r["dtype"]): r["median_us"] for r in decode_call}
    ort = min((us for (impl, _, _), us in medians.items() if impl.startswith("ort")), default=None)
    rows = []
    for (impl, layout, dtype), us in sorted(medians.items()):
        if not impl.startswith("rotary"):
            continue
        limit = 2.0 if "NumPy" in impl else 3.0
        versus_ort = f"; ORT {ort:.2f} µs: {ort / us:.2f}× faster" if ort else ""
        rows.append(
            f"| Python decode, {impl} {layout} {dtype} | {us:.2f} µs{versus_ort} | ≤ {limit:.0f} µs | "
            f"{us / limit:.2f}× | {_met(us <= limit and (ort is None or us < ort))} |"
        )
    return rows


def targets_section(gbench_runs, decode_call, callgrind_baseline):
    """Markdown: every target with its measured value, its ratio to the target and met or not.

    gbench_runs: [(label, rotate_bench JSON path)], one per SIMD target measured."""
    out = ["## Targets\n"]
    out.append(
        "Every figure from this run except the instruction counts (bench/callgrind-baseline.txt, made "
        "by `bench/callgrind.sh --update`). Prefill: Llama-3-8B, 4096 tokens, % of the limit measured "
        "right after each row on the same bytes; bold: under the target (90 %, on the fly 85 %).\n"
    )
    out.append(
        "| target | dtype | layout | in place 1 thr | in place 2 thr | out of place 1 thr | "
        "out of place 2 thr | on the fly 1 thr | on the fly 2 thr |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|")
    summary = []
    labelled = []
    for label, path in gbench_runs:
        context, medians = _medians(path)
        # The target the run dispatched to, as rotate_bench recorded it ("best" names none).
        label = context.get("rotary_simd_target", label)
        if context.get("rotary_simd_target_pinned") == "yes":
            label += " (pinned)"
        labelled.append((label, path))
        rows, misses, total = prefill_rows(label, medians)
        out += rows
        summary.append(f"{label}: {total - misses} of {total} prefill cells at target")
    out.append("\n" + "; ".join(summary) + ".\n")
    out.append("| target | measured | goal | ratio | status |")
    out.append("|---|---|---|---|---|")
    for label, path in labelled:
        out += decode_rows(label, _medians(path)[1])
    out += callgrind_rows(callgrind_baseline)
    if decode_call:
        out += python_decode_rows(decode_call)
    if gbench_runs:
        out += qk_norm_rows(_medians(gbench_runs[0][1])[1])
    out.append("")
    return out
