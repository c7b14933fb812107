"""rotary.plot and `rotary plot`: the files it writes (PNG signature and size, SVG with its text as
text: tick labels on both axes of every panel, a legend entry per config, the original context
marked), overlays, refusals before anything is written, and the plotted numbers against formulas
written out here (2π/θ of a plain config, RoFormer's decay bound)."""

import json
import math
import os
import struct
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="rotary.plot needs matplotlib (pip install 'rotary[plot]')")

import rotary
import rotary.plot

SVG = "{http://www.w3.org/2000/svg}"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def group(root, gid):
    found = [e for e in root.iter(f"{SVG}g") if e.get("id") == gid]
    assert len(found) == 1, f"expected one <g id={gid!r}>"
    return found[0]


def texts(element):
    return ["".join(t.itertext()).strip() for t in element.iter(f"{SVG}text")]


def tick_labels(panel, axis):
    """The tick label texts of a panel's "x" or "y" axis (matplotlib's groups xtick_N, ytick_N)."""
    ticks = [g for g in panel.iter(f"{SVG}g") if g.get("id", "").startswith(f"{axis}tick_")]
    return [label for tick in ticks for label in texts(tick) if label]


def lines(fig, prefix):
    return [line for ax in fig.axes for line in ax.lines if (line.get_gid() or "").startswith(prefix)]


@pytest.fixture(scope="module")
def llama_svg(tmp_path_factory):
    out = tmp_path_factory.mktemp("plot") / "llama.svg"
    assert rotary.plot.main(["llama-3.1-8b", "--out", str(out)]) == 0
    return ET.parse(out).getroot()


def test_png_has_the_signature_and_the_requested_size(tmp_path):
    out = tmp_path / "rope.png"
    assert rotary.plot.main(["llama-3.1-8b", "--out", str(out), "--size", "1234x777"]) == 0
    raw = out.read_bytes()
    assert raw[:8] == PNG_SIGNATURE
    # IHDR, the first chunk: width and height as big-endian 32-bit integers.
    assert raw[12:16] == b"IHDR"
    assert struct.unpack(">II", raw[16:24]) == (1234, 777)
    assert [p.name for p in tmp_path.iterdir()] == ["rope.png"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # as any file the user writes


def test_svg_has_tick_labels_on_both_axes_of_every_panel(llama_svg):
    # Llama 3.1 8B: 64 pairs, wavelengths from 2π to about 2e7 tokens; decay over 1 .. 2 * 131072.
    expected = {
        "wavelength": ({"0", "16", "32", "48"}, {"10", "100", "1k", "1M", "10M"}),
        "stretch": ({"0", "16", "32", "48"}, {"1", "2", "5"}),
        "decay": ({"1", "10", "100", "1k", "10k", "100k"}, {"2", "5", "10", "20"}),
    }
    for gid, (x_labels, y_labels) in expected.items():
        panel = group(llama_svg, gid)
        assert x_labels <= set(tick_labels(panel, "x")), gid
        assert y_labels <= set(tick_labels(panel, "y")), gid
    assert len(tick_labels(group(llama_svg, "decay"), "y")) >= 4


def test_svg_marks_the_original_context_and_the_llama3_bands(llama_svg):
    wavelength = texts(group(llama_svg, "wavelength"))
    assert "original context 8,192" in wavelength
    assert "extended context 131,072" in wavelength
    assert {"kept", "Llama 3 bands", "divided by 8"} <= set(texts(group(llama_svg, "stretch")))
    assert "original context 8,192" in texts(group(llama_svg, "decay"))


def test_overlay_of_three_configs_has_a_legend_entry_and_a_colour_each(tmp_path):
    names = ["llama-3.1-8b", "qwen2.5-7b-instruct-yarn", "llama-2-7b"]
    out = tmp_path / "three.svg"
    assert rotary.plot.main([*names, "--out", str(out)]) == 0
    legend = texts(group(ET.parse(out).getroot(), "legend"))
    for name in names:
        assert sum(label.startswith(name + " (") for label in legend) == 1, legend
    assert {"after scaling", "unscaled", "original context"} <= set(legend)

    fig = rotary.plot.figure(names)
    colours = {line.get_color() for line in lines(fig, "wavelength-scaled-")}
    assert len(lines(fig, "wavelength-scaled-")) == 3 and len(colours) == 3
    # The legend's samples are lines, in the configs' colours.
    samples = fig.legends[0].get_lines()
    assert [s.get_color() for s in samples[:3]] == [line.get_color() for line in lines(fig, "wavelength-scaled-")]


@pytest.mark.parametrize("name", ["rope.jpg", "rope.txt", "rope"])
def test_other_extensions_are_refused_before_anything_is_written(tmp_path, capsys, name):
    assert rotary.plot.main(["llama-3.1-8b", "--out", str(tmp_path / name)]) == 2
    error = capsys.readouterr().err
    assert "--out" in error and ".png, .svg or .pdf" in error
    assert list(tmp_path.iterdir()) == []


def test_bad_input_exits_2_naming_it(tmp_path, capsys):
    assert rotary.plot.main(["no-such-model", "--out", str(tmp_path / "x.png")]) == 2
    assert "no-such-model" in capsys.readouterr().err
    assert rotary.plot.main(["llama-3.1-8b", "--out", str(tmp_path / "x.png"), "--size", "big"]) == 2
    assert list(tmp_path.iterdir()) == []


def test_missing_matplotlib_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    assert rotary.plot.main(["llama-3.1-8b", "--out", str(tmp_path / "x.png")]) == 2
    assert "pip install 'rotary[plot]'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ImportError, match=r"pip install 'rotary\[plot\]'"):
        rotary.plot.figure("llama-3.1-8b")


def test_plotted_wavelengths_are_two_pi_over_theta_of_the_formula(tmp_path):
    # A plain config: theta_i = base^(-2i/d), in float32 as the models compute it.
    config = {"rope_theta": 10000.0, "hidden_size": 512, "num_attention_heads": 8, "max_position_embeddings": 2048}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    fig = rotary.plot.figure([str(path)])
    d = 64
    theta = (1.0 / (10000.0 ** (np.arange(0, d, 2, dtype=np.float32) / np.float32(d)))).astype(np.float32)
    expected = 2 * math.pi / theta.astype(np.float64)
    for gid in ("wavelength-scaled-0", "wavelength-unscaled-0"):
        (line,) = lines(fig, gid)
        np.testing.assert_allclose(line.get_xdata(), np.arange(d // 2))
        np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-6)
    (stretch,) = lines(fig, "stretch-0")
    np.testing.assert_allclose(stretch.get_ydata(), 1.0)


def test_plotted_decay_is_roformers_bound(tmp_path):
    fig = rotary.plot.figure(["qwen2.5-7b-instruct-yarn"])
    theta = rotary.Rope(rotary.builtin_config("qwen2.5-7b-instruct-yarn")).inv_freq.astype(np.float64)
    (line,) = lines(fig, "decay-scaled-0")
    r, bound = line.get_xdata(), line.get_ydata()
    # Su et al. 2021, section 3.4.3: B(r) = (1 / (d/2)) sum_j |sum_{k<j} exp(i r theta_k)|.
    for i in (0, len(r) // 2, len(r) - 1):
        partial = np.cumsum(np.exp(1j * r[i] * theta))
        assert bound[i] == pytest.approx(np.abs(partial).mean(), rel=1e-9)
    assert r[-1] == pytest.approx(2 * 32768)  # twice max_position_embeddings, as `rotary decay`


def test_context_draws_dynamic_ntk_at_that_length():
    # transformers' dynamic NTK at sequence length L > max_position_embeddings:
    # base' = base * (factor * L / max_pos - (factor - 1)) ** (d / (d - 2)), theta_i = base'^(-2i/d).
    name, context = "internlm2.5-7b-dynamic", 100_000
    config = rotary.builtin_config(name)
    d = config["hidden_size"] // config["num_attention_heads"]
    factor, max_pos = config["rope_scaling"]["factor"], config["max_position_embeddings"]
    base = config["rope_theta"] * (factor * context / max_pos - (factor - 1)) ** (d / (d - 2))
    theta = (1.0 / (base ** (np.arange(0, d, 2, dtype=np.float32) / np.float32(d)))).astype(np.float32)
    fig = rotary.plot.figure(name, context=context)
    (line,) = lines(fig, "wavelength-scaled-0")
    np.testing.assert_allclose(line.get_ydata(), 2 * math.pi / theta.astype(np.float64), rtol=1e-6)
    assert "at 100,000 tokens" in fig.legends[0].get_texts()[0].get_text()
