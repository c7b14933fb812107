"""Figures of RoPE configurations for a slide or a report: the wavelength of each rotated pair before
and after the scaling (with the scheme's bands: YaRN's ramp, Llama 3's kept, blended and divided
pairs), how much the scaling stretches each pair, and RoFormer's long-term decay bound over the
relative distance; several configurations overlaid, the original context length marked.

Needs matplotlib (``pip install 'rotary[plot]'``). Every number comes from rotary's core: the
frequencies a :class:`rotary.Rope` uses, the per-pair regimes ``rotary inspect`` prints, and the
decay bound of ``rotary/decay.h`` (the one ``rotary decay`` prints).

Example::

    import rotary.plot
    fig = rotary.plot.figure(["llama-3.1-8b", "qwen2.5-7b-instruct-yarn"])
    rotary.plot.save(fig, "rope.png")

From the command line: ``rotary plot llama-3.1-8b qwen2.5-7b-instruct-yarn --out rope.png``.
"""

import argparse
import io
import math
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from . import _rotary
from ._config import config_from_dict, config_from_file
from ._errors import invalid
from ._rope import Rope

#: The output formats, by file extension.
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
#: Default size in pixels (PNG at 100 dpi; SVG and PDF get the same size in inches / 100).
DEFAULT_SIZE = (1600, 900)
_DPI = 100
_MAX_CONFIGS = 10  # one colour each from matplotlib's ten-colour cycle
_INSTALL_HINT = "pip install 'rotary[plot]'"
_BLENDED_REGIMES = ("blended",)
_BOX = {"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1.5}  # text over lines stays legible


def _matplotlib():
    """The matplotlib package, or an ImportError that says how to install it."""
    try:
        # The submodules used here, loaded with the package: matplotlib does not import them all.
        import matplotlib
        import matplotlib.figure
        import matplotlib.lines
        import matplotlib.ticker
    except ImportError:
        raise ImportError(f"rotary.plot needs matplotlib: {_INSTALL_HINT}") from None
    return matplotlib


# ---- what is plotted: numbers from the core --------------------------------------------------


@dataclass
class _Series:
    label: str
    config: "_rotary.RopeConfig"
    wavelength: np.ndarray  # 2 pi / theta_i per pair after the scaling (inf where theta is 0)
    wavelength_unscaled: np.ndarray  # the same pairs without the scaling
    regimes: list  # per pair: "extrapolated", "interpolated", "blended", ... (rotary inspect's words)
    scheme: str  # "YaRN ramp", "Llama 3 bands", or "" when the scheme has no bands
    when: str  # for length-dependent frequencies: "at initialisation" or "at N tokens"; else ""

    @property
    def original_context(self):
        return int(self.config.original_max_position_embeddings or 0)

    @property
    def context(self):
        return int(self.config.max_position_embeddings or 0)


def _wavelengths(inv_freq):
    theta = np.asarray(inv_freq, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return 2 * math.pi / theta


def _label(config):
    """What the legend calls a config given by name or path: the built-in's name, the folder of a
    ``config.json``, or the path."""
    path = os.fspath(config)
    if not os.path.isfile(path):
        return path  # a built-in's name
    folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
    return folder if os.path.basename(path) == "config.json" and folder else path


def _load(config, layer_type, vision):
    """(RopeConfig, default label) of a built-in name, a config.json path, a dict or a RopeConfig."""
    if isinstance(config, _rotary.RopeConfig):
        return config, None
    if isinstance(config, (str, os.PathLike)):
        # The package's one rule: an existing path is a file, any other string a built-in's name.
        return config_from_file(config, layer_type, vision=vision), _label(config)
    if isinstance(config, Mapping) or hasattr(config, "to_dict"):
        return config_from_dict(config, layer_type, vision=vision), None
    raise invalid(
        "configs", f"expected built-in names, config.json paths, dicts or RopeConfigs, got {type(config).__name__}"
    )


def _frequencies(config, context):
    """The frequencies the model uses, and what the legend says about when: the types whose
    frequencies depend on the sequence length (dynamic, longrope) at `context` tokens when given,
    else as transformers builds them at initialisation."""
    rope = Rope(config)
    if not _rotary.explain_length_change(config):  # one set of frequencies at every length
        return rope.inv_freq, ""
    if not context:
        return rope.inv_freq, "at initialisation"
    last = np.full((rope.num_axes, 1), context - 1, dtype=np.int64)  # one token, every axis
    return rope.frequencies_for(last)[0], f"at {context:,} tokens"


def _series(config, label, layer_type, vision, context):
    config, default_label = _load(config, layer_type, vision)
    scaled, when = _frequencies(config, context)
    unscaled = Rope(config.unscaled()).inv_freq
    summary = _rotary.explain_scheme(config)
    regimes = [regime for _, regime in _rotary.explain_pairs(config, context if when else 0)]
    return _Series(
        label=label or default_label or f"config ({config.rope_type})",
        config=config,
        wavelength=_wavelengths(scaled),
        wavelength_unscaled=_wavelengths(unscaled),
        regimes=regimes,
        when=when,
        scheme=summary[0] if summary and any(r in _BLENDED_REGIMES for r in regimes) else "",
    )


def decay_bound(inv_freq, distances):
    """RoFormer's long-term decay bound B(r) (Su et al. 2021, section 3.4.3) for the frequencies
    `inv_freq` at each relative distance of `distances`.

    B(r) = (1 / (d/2)) * sum_{j=1}^{d/2} |S_j| with S_j = sum_{k<j} exp(i r theta_k): the part of
    the bound on a query-key logit that depends on the distance alone. Computed by the core
    (``rotary/decay.h``), as ``rotary decay`` prints it.

    Parameters
    ----------
    inv_freq : array_like of float32
        One inverse frequency per rotated pair, e.g. ``Rope(config).inv_freq``.
    distances : array_like of float
        Relative distances in tokens; fractional values are allowed.

    Returns
    -------
    numpy.ndarray of float64
    """
    theta = np.ascontiguousarray(inv_freq, dtype=np.float32)
    r = np.ascontiguousarray(distances, dtype=np.float64)
    if theta.ndim != 1:
        raise invalid("inv_freq", f"expected a 1-d array, got shape {theta.shape}")
    if r.ndim != 1:
        raise invalid("distances", f"expected a 1-d array, got shape {r.shape}")
    return _rotary.long_term_decay_bound(theta, r)


# ---- how it is drawn --------------------------------------------------------------------------


def _count_label(value, _position=None):
    """A token count as a slide would print it: 500, 8k, 128k, 1M, 2.5M."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:g}{suffix}"
    return f"{value:g}"


def _thousands(value):
    return f"{int(value):,}"


def _log_axis(axis, matplotlib, subs=(1.0,)):
    """Log ticks at `subs` times each power of ten, labelled as plain numbers."""
    axis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=subs, numticks=30))
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(_count_label))
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _span(regimes, wanted):
    """(first, last) pair index whose regime is in `wanted`, or None."""
    indices = [i for i, regime in enumerate(regimes) if regime in wanted]
    return (indices[0], indices[-1]) if indices else None


def _mark_bands(ax, series, colour, row):
    """Shades the blended pairs (YaRN's ramp, Llama 3's smoothed band) and names the three bands
    above the curves, one text row per configuration."""
    blended = _span(series.regimes, _BLENDED_REGIMES)
    if not series.scheme or blended is None:
        return
    ax.axvspan(blended[0] - 0.5, blended[1] + 0.5, color=colour, alpha=0.12, lw=0)
    factor = series.config.factor
    words = {
        "extrapolated": "kept",
        "blended": series.scheme,
        "interpolated": f"divided by {factor:g}" if factor else "divided",
    }
    y = 0.97 - 0.07 * row
    for regime, text in words.items():
        span = _span(series.regimes, (regime,))
        if span is None:
            continue
        x = (span[0] + span[1]) / 2
        ax.text(x, y, text, transform=ax.get_xaxis_transform(), ha="center", va="top", color=colour, fontsize=11)


def _context_lines(series_list, draw):
    """Calls draw(value, colour, style, text) once per distinct context length: the original (dotted)
    and, where the scaling extends it, the new one (dash-dot)."""
    seen = set()
    for s, colour in series_list:
        marks = [(s.original_context, ":", "original context")]
        if s.context > s.original_context:
            marks.append((s.context, "-.", "extended context"))
        for value, style, text in marks:
            if value > 0 and (value, style) not in seen:
                seen.add((value, style))
                draw(value, colour, style, f"{text} {_thousands(value)}")


def _wavelength_panel(ax, series_list, matplotlib):
    ax.set_gid("wavelength")
    for row, (s, colour) in enumerate(series_list):
        pairs = np.arange(len(s.wavelength))
        ax.plot(pairs, s.wavelength_unscaled, color=colour, ls="--", lw=1.5, gid=f"wavelength-unscaled-{row}")
        ax.plot(pairs, s.wavelength, color=colour, ls="-", lw=2.2, gid=f"wavelength-scaled-{row}")
        _mark_bands(ax, s, colour, row)

    placed = []

    def draw(value, colour, style, text):
        ax.axhline(value, color=colour, ls=style, lw=1.3)
        # Labels of nearby lengths side by side rather than over each other.
        column = sum(1 for other in placed if abs(math.log10(value / other)) < 0.3)
        placed.append(value)
        x = 0.01 + 0.3 * column
        ax.text(x, value, text, transform=ax.get_yaxis_transform(), va="bottom", fontsize=10, bbox=_BOX)

    _context_lines(series_list, draw)
    ax.set_yscale("log")
    _log_axis(ax.yaxis, matplotlib)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=9, integer=True))
    ax.set_xlabel("rotated pair i (low index = high frequency)")
    ax.set_ylabel("wavelength 2π/θᵢ (tokens)")
    ax.set_title("Wavelength per pair")


def _stretch_panel(ax, series_list, matplotlib):
    ax.set_gid("stretch")
    top = 2.0
    for row, (s, colour) in enumerate(series_list):
        stretch = s.wavelength / s.wavelength_unscaled
        pairs = np.arange(len(stretch))
        ax.plot(pairs, stretch, color=colour, lw=2.2, drawstyle="steps-mid", gid=f"stretch-{row}")
        finite = stretch[np.isfinite(stretch)]
        if finite.size:
            top = max(top, float(finite.max()))
        _mark_bands(ax, s, colour, row)
    ax.set_yscale("log")
    ax.set_ylim(0.8, top * 1.6 ** (1 + len(series_list) * 0.35))  # room for the band names
    _log_axis(ax.yaxis, matplotlib, subs=(1.0, 2.0, 5.0))
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=9, integer=True))
    ax.set_xlabel("rotated pair i")
    ax.set_ylabel("wavelength scaled ÷ unscaled (×)")
    ax.set_title("What the scaling does to each pair")


def _decay_distances(series_list, max_distance):
    if max_distance is None:
        # As `rotary decay`: twice the trained context, where the model was never trained to attend.
        max_distance = max((2 * s.context for s, _ in series_list if s.context > 0), default=65536)
    return np.logspace(0, math.log10(max(max_distance, 10)), 400)


def _decay_panel(ax, series_list, matplotlib, max_distance):
    ax.set_gid("decay")
    distances = _decay_distances(series_list, max_distance)
    for row, (s, colour) in enumerate(series_list):
        unscaled = 2 * math.pi / s.wavelength_unscaled
        scaled = 2 * math.pi / s.wavelength
        # The bound oscillates: thin lines keep overlaid curves apart.
        ax.plot(distances, decay_bound(unscaled, distances), color=colour, ls="--", lw=0.9, gid=f"decay-unscaled-{row}")
        ax.plot(distances, decay_bound(scaled, distances), color=colour, lw=1.3, gid=f"decay-scaled-{row}")

    def draw(value, colour, style, text):
        if value <= distances[-1]:
            ax.axvline(value, color=colour, ls=style, lw=1.3)
            ax.text(value, 0.97, text, transform=ax.get_xaxis_transform(), rotation=90, ha="right", va="top", bbox=_BOX)

    _context_lines(series_list, draw)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_axis(ax.xaxis, matplotlib)
    _log_axis(ax.yaxis, matplotlib, subs=(1.0, 2.0, 3.0, 5.0))
    ax.set_xlim(distances[0], distances[-1])
    ax.set_xlabel("relative distance between query and key (tokens)")
    ax.set_ylabel("bound B(r) (relative)")
    ax.set_title("Long-term decay: RoFormer's relative-distance bound")


def _legend(fig, series_list, matplotlib, title):
    """One entry per configuration (its colour) and one per line style, with line samples."""
    line = matplotlib.lines.Line2D
    handles = [line([], [], color=colour, lw=2.5) for _, colour in series_list]
    labels = [_describe(s) for s, _ in series_list]
    scaled = any(s.config.rope_type != "default" for s, _ in series_list)
    extended = any(s.context > s.original_context > 0 for s, _ in series_list)
    styles = [("-", "after scaling"), ("--", "unscaled")] if scaled else []
    styles += [(":", "original context")] + ([("-.", "extended context")] if extended else [])
    handles += [line([], [], color="0.3", ls=style, lw=1.6) for style, _ in styles]
    labels += [text for _, text in styles]
    # A title is the legend's own: constrained layout places an outside legend over a suptitle.
    legend = fig.legend(
        handles,
        labels,
        loc="outside upper center",
        ncols=min(4, len(labels)),
        frameon=False,
        title=title,
        title_fontproperties={"size": 16, "weight": "bold"},
    )
    legend.set_gid("legend")


def _describe(s):
    c = s.config
    if c.rope_type == "default":
        return f"{s.label} (unscaled RoPE)"
    factor = f", factor {c.factor:g}" if c.factor else ""
    when = f", {s.when}" if s.when else ""
    return f"{s.label} ({c.rope_type}{factor}{when})"


def figure(
    configs,
    *,
    labels=None,
    layer_type=None,
    vision=False,
    context=None,
    size=DEFAULT_SIZE,
    max_distance=None,
    title=None,
):
    """A figure of one or more RoPE configurations, overlaid in distinct colours.

    Three panels: the wavelength 2π/θᵢ of each rotated pair before (dashed) and after (solid) the
    scaling, with the original context length marked; how much the scaling stretches each pair,
    with the scheme's bands named (YaRN's ramp, Llama 3's kept / blended / divided pairs); and
    RoFormer's long-term decay bound (:func:`decay_bound`) over the relative distance.

    Parameters
    ----------
    configs : str, os.PathLike, Mapping, RopeConfig, or a list of them
        Built-in names (:func:`rotary.builtin_names`), ``config.json`` paths, config dicts or
        RopeConfigs; at most ten.
    labels : list of str, optional
        Legend labels, one per config (default: the built-in name, the folder of a
        ``config.json``, or the path).
    layer_type : str, optional
        For configs with a RoPE per layer type (see :func:`rotary.rope_layer_types`); applies to
        every config.
    vision : bool
        The vision tower's 2D RoPE instead of the language model's, for every config.
    context : int, optional
        The sequence length whose frequencies are drawn, for the types whose frequencies depend on
        it (dynamic NTK, LongRoPE), as a call of that length uses them (default: the frequencies
        transformers builds at initialisation). Other types have one set and ignore it.
    size : (int, int)
        Width and height in pixels at 100 dpi (the PNG's size; SVG and PDF get the same inches).
    max_distance : int, optional
        The decay panel's largest distance (default: twice the largest max_position_embeddings).
    title : str, optional
        A title above the panels.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    rotary.Error
        (a ValueError) for a config that cannot be read or an argument out of range, naming it.
    ImportError
        When matplotlib is not installed.
    """
    matplotlib = _matplotlib()
    if isinstance(configs, (str, os.PathLike, Mapping, _rotary.RopeConfig)):
        configs = [configs]
    configs = list(configs)
    _check_figure_arguments(configs, labels, size, max_distance, context)
    labels = labels or [None] * len(configs)
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    series_list = [
        (_series(c, label, layer_type, vision, context), colours[i % len(colours)])
        for i, (c, label) in enumerate(zip(configs, labels, strict=True))
    ]
    with matplotlib.rc_context(_STYLE):
        fig = matplotlib.figure.Figure(figsize=(size[0] / _DPI, size[1] / _DPI), dpi=_DPI, layout="constrained")
        grid = fig.add_gridspec(2, 2)
        _wavelength_panel(fig.add_subplot(grid[0, 0]), series_list, matplotlib)
        _stretch_panel(fig.add_subplot(grid[0, 1]), series_list, matplotlib)
        _decay_panel(fig.add_subplot(grid[1, :]), series_list, matplotlib, max_distance)
        _legend(fig, series_list, matplotlib, title)
    return fig


_STYLE = {
    "font.size": 12,
    "axes.titlesize": 14,
    "axes.titleweight": "bold",
    "axes.labelsize": 12,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 12,
}


def _check_figure_arguments(configs, labels, size, max_distance, context):
    if not configs:
        raise invalid("configs", "expected at least one config")
    if len(configs) > _MAX_CONFIGS:
        raise invalid("configs", f"at most {_MAX_CONFIGS} in one figure (one colour each), got {len(configs)}")
    if labels is not None and len(labels) != len(configs):
        raise invalid("labels", f"expected one label per config ({len(configs)}), got {len(labels)}")
    if len(size) != 2 or not all(isinstance(v, int) and 200 <= v <= 10000 for v in size):
        raise invalid("size", f"expected (width, height) in pixels, each an integer from 200 to 10000, got {size}")
    if max_distance is not None and not (isinstance(max_distance, int) and 10 <= max_distance <= 2**53):
        raise invalid("max_distance", f"expected an integer from 10 to 2^53, got {max_distance!r}")
    if context is not None and not (isinstance(context, int) and context >= 1):
        raise invalid("context", f"expected a sequence length of at least 1, got {context!r}")


# ---- writing ----------------------------------------------------------------------------------


def output_format(path):
    """The format ``save`` writes for `path` ("png", "svg" or "pdf"), from its extension.

    Raises
    ------
    rotary.Error
        (a ValueError) naming the path for any other extension.
    """
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if extension not in FORMATS:
        raise invalid(
            "--out",
            f"{os.fspath(path)!r}: expected a file name ending in .png, .svg or .pdf, got "
            f"{extension or 'no extension'!r}",
        )
    return FORMATS[extension]


def save(fig, path):
    """Writes `fig` to `path` as PNG, SVG or PDF, by the extension (anything else is refused before
    anything is written). SVG keeps its text as text (searchable, editable in a slide tool). The file
    appears complete or not at all: it is written under a temporary name and renamed.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        From :func:`figure`.
    path : str or os.PathLike
        Ends in ``.png``, ``.svg`` or ``.pdf``.
    """
    fmt = output_format(path)
    matplotlib = _matplotlib()
    rendered = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "rotary"}):
        # No date in SVG/PDF: the same figure gives the same file.
        metadata = {"Date": None} if fmt in ("svg", "pdf") else None
        fig.savefig(rendered, format=fmt, dpi=_DPI, metadata=metadata)
    _write_atomically(os.fspath(path), rendered.getvalue())


def _write_atomically(path, data):
    """`data` into `path` under a temporary name in the same folder, then renamed over it. The
    temporary file is created with mode 0o666 so that the umask decides the permissions, as for any
    file the user writes (tempfile.mkstemp would leave 0o600)."""
    folder, name = os.path.split(os.path.abspath(path))
    while True:
        temporary = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(descriptor, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


# ---- the command ------------------------------------------------------------------------------


def _size(text):
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, e.g. 1600x900, got {text!r}")
    return int(width), int(height)


def _parser():
    parser = argparse.ArgumentParser(
        prog="rotary plot",
        description=(
            "A figure of RoPE configurations (overlaid): wavelength per pair before and after the scaling, "
            "the scaling's bands, and RoFormer's long-term decay bound. Needs matplotlib: "
            f"{_INSTALL_HINT}."
        ),
    )
    parser.add_argument("configs", nargs="+", metavar="CONFIG", help="built-in name (rotary list) or config.json path")
    parser.add_argument("--out", required=True, metavar="FILE", help="output file: .png, .svg or .pdf")
    parser.add_argument("--label", action="append", metavar="TEXT", help="legend label, once per CONFIG in order")
    parser.add_argument(
        "--layer-type", metavar="TYPE", help="for configs with a RoPE per layer type, e.g. sliding_attention"
    )
    parser.add_argument("--vision", action="store_true", help="the vision tower's 2D RoPE (vision_config)")
    parser.add_argument(
        "--size",
        type=_size,
        default=DEFAULT_SIZE,
        metavar="WxH",
        help="WIDTHxHEIGHT in pixels at 100 dpi (default 1600x900)",
    )
    parser.add_argument(
        "--context",
        type=int,
        metavar="TOKENS",
        help="sequence length whose frequencies are drawn, for dynamic and longrope (default: as at initialisation)",
    )
    parser.add_argument(
        "--max-distance",
        type=int,
        metavar="TOKENS",
        help="the decay panel's largest distance (default: twice the largest max_position_embeddings)",
    )
    parser.add_argument("--title", metavar="TEXT", help="a title above the panels")
    return parser


def main(argv):
    """``rotary plot CONFIG [CONFIG ...] --out FILE``: `argv` are the arguments after ``plot``.

    Returns the exit status: 0 written, 2 bad input (nothing written), 1 writing failed.
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed by argparse
        return e.code if isinstance(e.code, int) else 2
    try:
        output_format(args.out)
        _matplotlib()
        fig = figure(
            args.configs,
            labels=args.label,
            layer_type=args.layer_type,
            vision=args.vision,
            context=args.context,
            size=args.size,
            max_distance=args.max_distance,
            title=args.title,
        )
    except (ValueError, OSError, ImportError) as e:
        print(f"rotary plot: {e}", file=sys.stderr)
        return 2
    try:
        save(fig, args.out)
    except OSError as e:
        print(f"rotary plot: {args.out}: writing failed: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
