"""Pictures of a comparison beyond compare's own plot: the depth profile of every
comparison, and each paper preset's figure (docs/papers/).

Everything comes from what the runs left behind: the per-layer diagnostics at step 0
in the ledger entries (core.diagnostics, `diagnostics.first`), and the runs' event
files: their scalars (a comparison's runs write theirs under the comparison's scope,
the per-layer `layers/...` scalars unscoped) and histograms. The readers below need
no matplotlib; the drawing functions import it inside.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from dlcli.inspection import layer_order
from dlcli.report import offscreen_pyplot

DEPTH_SUFFIX, PAPER_SUFFIX = "-depth.png", "-paper.png"


# -- what the runs left behind ---------------------------------------------------------


def ledger_entries(comparison) -> dict[str, list[dict]]:
    """{variant: [ledger entry per seed, in seed order]} of a comparison that has run."""
    comparison.ledger.refresh()  # the entries this command appended
    by_variant: dict[str, list[dict]] = {v.name: [] for v in comparison.plan.variants}
    for planned in comparison.plan.runs:
        entry = comparison.ledger.get(planned.config)
        if entry is not None:
            by_variant[planned.variant.name].append(entry)
    return by_variant


def at_start(entries: dict[str, list[dict]], quantity: str) -> dict[str, dict[str, float]]:
    """{variant: {layer: mean over seeds}} of one per-layer quantity at step 0 (before
    any training), from the ledger entries' diagnostics; layers in depth order. A
    variant whose runs have no diagnostics (made before they existed) is left out."""
    profile = {}
    for variant, seeds in entries.items():
        records = [((e.get("diagnostics") or {}).get("first") or {}).get("layers") for e in seeds]
        records = [r for r in records if r]
        if not records:
            continue
        layers = sorted({layer for r in records for layer, q in r.items() if quantity in q}, key=layer_order)
        means = {}
        for layer in layers:
            values = [r[layer][quantity] for r in records if quantity in r.get(layer, {})]
            means[layer] = statistics.fmean(values)
        if means:
            profile[variant] = means
    return profile


def run_logdirs(the_plan) -> dict[str, list[Path]]:
    """{variant: [log folder per seed, in seed order]}."""
    out: dict[str, list[Path]] = {v.name: [] for v in the_plan.variants}
    for planned in the_plan.runs:
        out[planned.variant.name].append(Path(planned.config.logdir) / planned.config.name)
    return out


def training_loss(the_plan) -> dict[str, list[list[tuple[int, float]]]]:
    """{variant: [[(step, training loss), ...] per seed]} from the runs' event files."""
    from dlcli.core.summaries import read_scalars

    return {variant: [read_scalars(folder, "train", the_plan.scope).get("loss", []) for folder in folders]
            for variant, folders in run_logdirs(the_plan).items()}  # fmt: skip


def layer_series(logdir: Path, layer: str, quantities: tuple[str, ...]) -> dict[str, list[tuple[int, float]]]:
    """{quantity: [(step, value), ...]} of one layer's diagnostics over a run."""
    from dlcli.core.summaries import read_scalars

    scalars = read_scalars(logdir, "train")
    return {q: scalars.get(f"layers/{layer}/{q}", []) for q in quantities}


def layer_histograms(logdir: Path, kind: str) -> dict[str, list[tuple[int, object]]]:
    """{hidden layer: [(step, buckets), ...]} of a run's `<layer>/<kind>` histograms
    (kind: preactivations or backprop_gradients; logged at step 0 and every logging
    step), layers in depth order."""
    from dlcli.core.summaries import read_histograms

    found = {tag.split("/")[0]: series for tag, series in read_histograms(logdir).items()
             if tag.count("/") == 1 and tag.endswith(f"/{kind}")}  # fmt: skip
    return {layer: found[layer] for layer in sorted(found, key=layer_order)}


def mean_curve(series: list[list[tuple[int, float]]]):
    """(steps, mean over seeds, min, max) over the steps every seed has; None if none."""
    series = [s for s in series if s]
    if not series:
        return None
    length = min(len(s) for s in series)
    steps = [step for step, _ in series[0][:length]]
    columns = list(zip(*[[v for _, v in s[:length]] for s in series]))
    return steps, [statistics.fmean(c) for c in columns], [min(c) for c in columns], [max(c) for c in columns]


# -- drawing ---------------------------------------------------------------------------


def write_all(comparison, rows: list[dict], plot: str) -> list[str]:
    """Beside compare's --plot file: STEM-depth.png for every comparison, and for a
    paper's preset STEM-paper.png. Returns the paths written."""
    stem = str(plot)[: -len(".png")] if str(plot).lower().endswith(".png") else str(plot)
    entries = ledger_entries(comparison)
    variants = [r["variant"] for r in rows]
    written = []
    depth = stem + DEPTH_SUFFIX
    if depth_profile_plot(at_start(entries, "weight_grad_norm"), variants, depth, title=comparison.plan.folder,
                          colors=plan_colors(comparison.plan)):  # fmt: skip
        written.append(depth)
    figure = FIGURES.get(comparison.plan.paper)
    if figure is not None:
        path = stem + PAPER_SUFFIX
        figure(comparison, entries, path)
        written.append(path)
    return written


def plan_colors(the_plan) -> dict[str, str]:
    """{variant: colour}, the same in every figure of the comparison (figures.variant_colors)."""
    from dlcli import figures

    return figures.variant_colors(v.name for v in the_plan.variants)


def _save(fig, path: str) -> None:
    from dlcli import figures

    figures.save(fig, path, dpi=90)


def _profile_panel(ax, profile: dict[str, dict[str, float]], variants: list[str], *, log: bool, title: str,
                   label: str, colors: dict | None = None) -> int:  # fmt: skip
    """One line per variant: a quantity (`label`, the y axis) by layer (input side
    left). Returns lines drawn."""
    from dlcli import figures

    colors = colors or figures.variant_colors(variants)
    layers = sorted({layer for values in profile.values() for layer in values}, key=layer_order)
    drawn = 0
    for variant in variants:
        values = profile.get(variant)
        if not values:
            continue
        ax.plot(range(len(layers)), [values.get(layer, math.nan) for layer in layers], "-o", markersize=3,
                label=variant, color=colors.get(variant))  # fmt: skip
        drawn += 1
    step = max(1, len(layers) // 12)  # 30 layers: every third name
    ax.set_xticks(range(0, len(layers), step), layers[::step], rotation=30, ha="right")
    ax.set_xlabel(figures.LAYER)
    ax.set_ylabel(label + (" (log scale)" if log else ""))
    if log:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return drawn


def depth_profile_plot(profile: dict[str, dict[str, float]], variants: list[str], path: str, *, title: str,
                       colors: dict | None = None) -> int:  # fmt: skip
    """compare's depth profile: the weight-gradient norm of every layer at step 0, one
    line per variant (mean over seeds), log scale. Returns the lines drawn (0: no
    variant has diagnostics, nothing written)."""
    if not profile:
        return 0
    from dlcli import figures

    offscreen_pyplot()
    fig, ax = figures.new_figure(figsize=(9, 4.4))
    drawn = _profile_panel(ax, profile, variants, log=True, colors=colors, label="||dL/dW|| at step 0, mean over seeds",
                           title="weight-gradient norm by layer at step 0")  # fmt: skip
    figures.legend_outside(fig, title="variant")
    fig.suptitle(title)
    _save(fig, path)
    return drawn


# -- the papers' figures ------------------------------------------------------------------

_ACTIVATIONS = {  # the glorot preset's activations, for activation histograms at step 0
    "tanh": math.tanh,
    "sigmoid": lambda x: 1 / (1 + math.exp(-x)) if x > -700 else 0.0,
    "softsign": lambda x: x / (1 + abs(x)),
}


def _density(buckets, transform=None):
    """(bucket centres, density) of TensorBoard histogram buckets [(left, right, count)],
    the edges first mapped through `transform` (an increasing function: the activation,
    to turn pre-activations into activations, bucket for bucket)."""
    total = sum(b[2] for b in buckets) or 1.0
    centres, density = [], []
    for left, right, count in buckets:
        if count == 0:
            continue  # an empty bucket: nothing to draw on a log scale
        if transform is not None:
            left, right = transform(left), transform(right)
        width = max(right - left, 1e-30)
        centres.append((left + right) / 2)
        density.append(count / total / width)
    return centres, density


def glorot_figure(comparison, entries: dict, path: str) -> None:
    """Glorot & Bengio's Figs. 6 and 7 for each activation of the comparison: every
    hidden layer's activation values and back-propagated gradients (dL/da), at step 0
    and at the last logged step, standard init (top) vs normalised (bottom), seed 0's
    run (the first seed). The activations at step 0 are the pre-activation histogram
    mapped through the activation (it is increasing), the only one logged at step 0."""
    from dlcli import figures

    offscreen_pyplot()
    the_plan = comparison.plan
    folders = run_logdirs(the_plan)
    variants = [v for v in the_plan.variants if folders[v.name]]
    fig, axes = figures.new_figure(len(variants), 4, figsize=(17, 3.3 * len(variants)), squeeze=False)
    for row, variant in zip(axes, variants):
        activation = dict(variant.settings).get("activation", the_plan.base.model.activation)
        f = _ACTIVATIONS.get(activation)
        pre = layer_histograms(folders[variant.name][0], "preactivations")
        back = layer_histograms(folders[variant.name][0], "backprop_gradients")
        for ax, (series, which, kind) in zip(row, [(pre, 0, "activations"), (back, 0, "back-propagated gradients"),
                                                   (pre, -1, "activations"), (back, -1, "back-propagated gradients")]):  # fmt: skip
            step = None
            for layer, points in series.items():
                step, buckets = points[which]
                centres, density = _density(buckets, f if kind == "activations" and f else None)
                ax.plot(centres, density, label=layer, linewidth=1.2)
            shown = kind if f or kind != "activations" else "pre-activations"
            ax.set_title(f"{variant.name}\n{shown}, step {step}")
            ax.set_yscale("log")
            ax.grid(alpha=0.3)
            ax.set_xlabel({"activations": "activation value", "pre-activations": "pre-activation value"}.get(
                shown, "dL/da (gradient at the activations)"))  # fmt: skip
            ax.set_ylabel("density (log scale)")
            if kind != "activations":
                ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
    figures.legend_outside(fig, title="hidden layer")
    fig.suptitle("Glorot & Bengio 2010, Figs. 6-7: per-layer distributions (TensorBoard histograms of the "
                 "256 probe digits, seed 0)")  # fmt: skip
    _save(fig, path)


def he_figure(comparison, entries: dict, path: str) -> None:
    """He et al.'s Fig. 3 and why: the training loss against the step, and at step 0
    the activation std, the back-propagated gradient's std and the weight-gradient
    norm by layer, one line per variant (mean over seeds)."""
    from dlcli import figures

    offscreen_pyplot()
    the_plan = comparison.plan
    variants = [v.name for v in the_plan.variants]
    colors = plan_colors(the_plan)
    fig, axes = figures.new_figure(1, 4, figsize=(20, 4.6))
    for variant, series in training_loss(the_plan).items():
        curve = mean_curve(series)
        if curve is None:
            continue
        steps, mean, low, high = curve
        axes[0].plot(steps, mean, label=variant, color=colors[variant])
        if len(series) > 1:
            axes[0].fill_between(steps, low, high, color=colors[variant], alpha=0.2, linewidth=0)
    axes[0].axhline(math.log(10), color="grey", linestyle=":", linewidth=1, label="ln 10 (chance)")
    axes[0].set_xlabel(figures.STEP)
    axes[0].set_ylabel("training loss (mean over each logging window)")
    axes[0].set_title("training loss (Fig. 3's curves)")
    axes[0].grid(alpha=0.3)
    panels = [("act_std", True, "activation std at step 0", "activation std"),
              ("backprop_std", True, "back-propagated gradient std at step 0", "std of dL/da"),
              ("weight_grad_norm", True, "weight-gradient norm at step 0", "||dL/dW||")]  # fmt: skip
    for ax, (quantity, log, title, label) in zip(axes[1:], panels):
        # Xavier's std halves every other layer: a straight line on a log scale.
        _profile_panel(ax, at_start(entries, quantity), variants, log=log, title=title, label=label, colors=colors)
    seeds = len(the_plan.seeds)
    figures.legend_outside(fig, title="variant (mean over seeds)" if seeds > 1 else "variant (1 seed)")
    fig.suptitle(f"He et al. 2015, Fig. 3 at small scale: {the_plan.base.model.layers} dense layers of "
                 f"{the_plan.base.model.units} ReLU units, SGD {the_plan.base.train.lr:g}")  # fmt: skip
    _save(fig, path)


def batchnorm_figure(comparison, entries: dict, path: str) -> None:
    """Ioffe & Szegedy's Fig. 1: test accuracy against the step (a, on the first 1000
    test digits), and the 15th/50th/85th percentiles of one last-hidden-layer
    sigmoid's input over training (the layer's first unit, over the 256 probe digits),
    without (b) and with (c) batch norm; for a run from dlcli 0.3.0, which did not log
    one unit's, the whole layer's inputs, so titled."""
    from dlcli.comparison import learning_curves

    from dlcli import figures

    offscreen_pyplot()
    the_plan = comparison.plan
    colors = plan_colors(the_plan)
    accuracy, _ = learning_curves(the_plan)
    fig, axes = figures.new_figure(1, 1 + len(the_plan.variants), figsize=(5.4 * (1 + len(the_plan.variants)), 4.6))
    finals = {name: statistics.fmean(e["accuracy"] for e in seeds) for name, seeds in entries.items() if seeds}
    for variant in the_plan.variants:
        curve = mean_curve(list(accuracy.by_variant.get(variant.name, {}).values()))
        if curve is not None:
            axes[0].plot(curve[0], curve[1], label=variant.name, color=colors[variant.name])
            if variant.name in finals:  # the table's number: the whole test set at the end
                figures.final_marker(axes[0], curve[0][-1], finals[variant.name], colors[variant.name])
    axes[0].set_xlabel(figures.STEP)
    axes[0].set_ylabel("test accuracy (first 1000 test digits)")
    axes[0].set_title("(a) test accuracy\n(diamond: whole test set, the table's)")
    axes[0].grid(alpha=0.3)
    last = f"hidden{the_plan.base.model.layers - 1}"
    folders = run_logdirs(the_plan)
    limits = []
    for ax, variant, letter in zip(axes[1:], the_plan.variants, "bcdefghijklmnopqrstuvwxyz"):
        # One sigmoid's input, as the paper's panels; a run made before dlcli logged one
        # unit's percentiles (0.3.0, reused from the ledger) shows the whole layer's.
        found = layer_series(folders[variant.name][0], last, tuple(f"{p}{q}" for p in ("unit_p", "preact_p")
                                                                   for q in (15, 50, 85)))  # fmt: skip
        one_unit = any(found["unit_p50"])
        prefix, shown = ("unit_p", f"one {last} sigmoid's input") if one_unit else ("preact_p", f"{last}'s inputs")
        series = {q: points for q, points in found.items() if q.startswith(prefix)}
        for quantity, style in zip(series, (":", "-", "--")):
            points = series[quantity]
            ax.plot([s for s, _ in points], [v for _, v in points], style, color="black",
                    label=f"{quantity[len(prefix):]}th percentile")  # fmt: skip
            limits += [v for _, v in points]
        if dict(variant.settings).get("batchnorm", the_plan.base.model.batchnorm):
            # Measured in inference mode, batch norm uses its moving averages, which start
            # at mean 0, variance 1 and move 1% a step (Keras' momentum 0.99): 99% of the
            # way after 459 steps. Before that the inputs shown are not yet normalised.
            ax.axvspan(0, BATCHNORM_WARMUP, color="grey", alpha=0.15, label="moving averages warming up")
        ax.set_title(f"({letter}) {variant.name}\n{shown}, seed {the_plan.seeds[0]}")
        ax.set_xlabel(figures.STEP)
        ax.set_ylabel("input to the sigmoid (percentiles)")
        ax.grid(alpha=0.3)
    if limits:
        low, high = min(limits), max(limits)
        pad = 0.05 * (high - low or 1)
        for ax in axes[1:]:
            ax.set_ylim(low - pad, high + pad)  # one scale: the drift shows against the steady one
    handles, labels = [], []
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    handles.append(figures.final_handle("final, whole test set: the table's number"))
    labels.append(handles[-1].get_label())
    figures.legend_outside(fig, handles, labels)
    fig.suptitle("Ioffe & Szegedy 2015, Fig. 1 at small scale")
    _save(fig, path)


BATCHNORM_WARMUP = math.ceil(math.log(0.01) / math.log(0.99))  # steps until 0.99**n < 1%: 459

FIGURES = {"glorot": glorot_figure, "he": he_figure, "batchnorm": batchnorm_figure}
