"""The one figure style of every picture dlcli draws with matplotlib (compare --plot,
inspect --plot, the papers' figures, the HTML report, the notebook display).

- Bars start at 0; where small differences matter, dots with their intervals (a forest
  plot) instead of bars, and intervals only where the table has them.
- Every axis says its quantity (and unit, where it has one).
- Legends sit outside the data: one legend per figure, right of the panels.
- One colour per variant in every figure of a comparison (`variant_colors`, from the
  plan's order, whatever the table's sort).
- No text under `SMALLEST` points.

matplotlib is imported inside the functions (the `plot` extra).
"""

from __future__ import annotations

SMALLEST = 9  # points: the smallest text of any figure (readable at 100% zoom)
TEXT = {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": SMALLEST,
        "ytick.labelsize": SMALLEST, "legend.fontsize": SMALLEST, "figure.titlesize": 11}  # fmt: skip
STEP = "training step"
LAYER = "layer (input side left)"


def variant_colors(names) -> dict[str, str]:
    """{variant: colour}: matplotlib's colour cycle in the order given (the plan's), so
    a variant has the same colour in the comparison's plot, its depth profile and its
    paper's figure, sorted or not."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    cycle = [to_hex(c) for c in plt.rcParams["axes.prop_cycle"].by_key()["color"]]
    return {name: cycle[i % len(cycle)] for i, name in enumerate(dict.fromkeys(names))}


def new_figure(*args, **kwargs):
    """plt.subplots in the style: constrained layout (room for the legend outside the
    panels) and text no smaller than SMALLEST."""
    import matplotlib.pyplot as plt

    with plt.rc_context(TEXT):
        return plt.subplots(*args, layout="constrained", **kwargs)


def legend_outside(fig, handles=None, labels=None, *, title: str | None = None) -> None:
    """One legend for the whole figure, right of its panels (never on the data): the
    given entries, or every panel's labelled artists once each."""
    if handles is None:
        seen = {}
        for ax in fig.axes:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                seen.setdefault(label, handle)
        labels, handles = list(seen), list(seen.values())
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=SMALLEST, title=title,
                   title_fontsize=SMALLEST)  # fmt: skip


def finish(fig) -> None:
    """Text no smaller than SMALLEST points anywhere (tick labels included, which
    matplotlib makes only when it draws)."""
    from matplotlib.text import Text

    for ax in fig.axes:
        ax.tick_params(labelsize=SMALLEST)
    for text in fig.findobj(Text):
        if text.get_fontsize() < SMALLEST:
            text.set_fontsize(SMALLEST)


def final_marker(ax, step: float, value: float, color: str, *, label: str | None = None):
    """The run's final number (the table's) at the curve's end: a diamond edged in
    black, so the figure says which point is the table's."""
    return ax.plot([step], [value], marker="D", markersize=7, color=color, markeredgecolor="black",
                   linestyle="none", label=label, zorder=4, gid="final")[0]  # fmt: skip


def final_handle(text: str):
    """A legend entry for the final diamonds."""
    from matplotlib.lines import Line2D

    return Line2D([], [], marker="D", markersize=7, color="grey", markeredgecolor="black", linestyle="none",
                  label=text)  # fmt: skip


def save(fig, path: str, dpi: int = 110) -> None:
    """Write `fig` as a PNG to `path` in the style, and close it."""
    import matplotlib.pyplot as plt

    finish(fig)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
