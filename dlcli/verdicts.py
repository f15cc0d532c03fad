"""How sure a comparison is: verdicts over seeds that count their comparisons and their looks.

A comparison trains every variant with the same seeds, so the accuracies pair up by seed
(a seed fixes the initial weights and the data order; a good or bad seed tends to be good or
bad for every variant, and pairing cancels that shared part). This module turns
``{variant: {seed: accuracy}}`` into, per variant, an accuracy interval that stays inside
[0, 1], the paired difference to the best, and a verdict:

- "clearly behind": the variant is not the best (its mean is below another variant's),
- "within D of the best": its mean is at most D below the best mean (with ``tolerance=D``),
- "clearly best": every other variant is clearly behind,
- "open": not decided yet; "no verdict": too few seeds to judge at all.

The family-wise error over all these claims is at most ``alpha``: every claim is a Holm
step-down decision over one family fixed in advance (all ordered pairs, plus one
equivalence hypothesis per variant), and when seeds are added after looking
(``--seeds auto``) alpha is split evenly over the looks (Bonferroni over looks). Why this
family, and why not simply "each variant against the observed best", is in
docs/statistics.md.

Standard library only (``math``): the Student t distribution is computed
here from the regularized incomplete beta function. Nothing here trains, prints or exits;
bad arguments are programming errors and raise ``ValueError`` (the CLI checks user input
before it gets here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

# -- Student t distribution -----------------------------------------------------------------


def _beta_continued_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction of I_x(a, b), evaluated by Lentz's method (Numerical Recipes
    6.4); converges quickly for x < (a + 1) / (a + b + 2)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            return h
    raise ArithmeticError(f"incomplete beta did not converge for x={x}, a={a}, b={b}")


def regularized_beta(x: float, a: float, b: float, *, complement: float | None = None) -> float:
    """I_x(a, b), the regularized incomplete beta function. ``complement`` may pass 1 - x
    when the caller has it more precisely than 1 - x would be."""
    y = 1.0 - x if complement is None else complement
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_front = a * math.log(x) + b * math.log(y) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(y, b, a) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom (the one-sided p-value of t)."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    if math.isnan(t):
        raise ValueError("t is NaN")
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    # P(|T| > |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2); both arguments computed directly.
    tail = 0.5 * regularized_beta(df / (df + t * t), df / 2.0, 0.5, complement=t * t / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    return 1.0 - t_sf(t, df) if t >= 0 else t_sf(-t, df)


@lru_cache(maxsize=4096)
def t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p (e.g. ``t_quantile(0.975, 4)`` = 2.776). Cached: the same
    few levels and degrees of freedom come back at every look."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"a quantile needs 0 < p < 1, got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    tail = 1.0 - p
    high = 1.0
    while t_sf(high, df) > tail:
        high *= 2.0
    low = 0.0
    # Bisection: t_sf is monotone, and 200 halvings reach the float resolution of any bracket.
    for _ in range(200):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if t_sf(middle, df) > tail:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


# -- Holm's step-down procedure -------------------------------------------------------------


def holm(p_values: list[float], alpha: float = 0.05) -> tuple[list[float], list[bool]]:
    """Holm's (1979) step-down procedure over m hypotheses: the adjusted p-values, in the
    order given, and which hypotheses are rejected at family-wise level ``alpha``.

    Sorted ascending, the i-th smallest p-value (i = 1..m) is rejected while
    p(i) <= alpha / (m - i + 1); the first failure stops it. Its adjusted p-value is
    max over j <= i of min(1, (m - j + 1) p(j)), so "rejected" is "adjusted <= alpha".
    Valid under any dependence between the tests.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    m = len(p_values)
    adjusted = [1.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted, [p <= alpha for p in adjusted]


# -- intervals ------------------------------------------------------------------------------


def mean_and_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0.0 for one value). Two passes with fsum:
    as accurate as statistics.stdev for these few values, without its exact fractions,
    which made the sequential simulations several times slower."""
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(math.fsum((x - mean) ** 2 for x in values) / (n - 1))


@dataclass(frozen=True)
class Interval:
    """A mean with its Student-t interval, clipped to the values the mean can take.

    ``clipped`` says the raw t interval reached past ``[lowest, highest]`` and was cut there:
    the cut-off part held only impossible values, so coverage is unchanged, but it is a sign
    that too few seeds make the symmetric interval crude (print it marked).
    """

    mean: float
    std: float  # sample standard deviation (n - 1); 0.0 with one value
    low: float | None  # None with fewer than two values: no spread to judge by
    high: float | None
    n: int
    level: float
    clipped: bool = False


def mean_interval(values: list[float], *, level: float = 0.95, lowest: float = -math.inf,
                  highest: float = math.inf) -> Interval:  # fmt: skip
    """The mean of ``values`` with its two-sided Student-t interval at ``level``, clipped to
    [lowest, highest]."""
    n = len(values)
    if n == 0:
        raise ValueError("an interval needs at least one value")
    mean, std = mean_and_std(values)
    return _interval(mean, std, n, level, lowest, highest)


def _interval(mean: float, std: float, n: int, level: float, lowest: float, highest: float) -> Interval:
    if n < 2:
        return Interval(mean, 0.0, None, None, n, level)
    half = t_quantile(0.5 + level / 2.0, n - 1) * std / math.sqrt(n)
    low, high = mean - half, mean + half
    clipped = low < lowest or high > highest
    return Interval(mean, std, max(low, lowest), min(high, highest), n, level, clipped)


def accuracy_interval(values: list[float], *, level: float = 0.95) -> Interval:
    """Mean accuracy over seeds with a t interval that never leaves [0, 1] (clipped and
    marked; docs/statistics.md says why clipping rather than a logit-scale interval)."""
    return mean_interval(values, level=level, lowest=0.0, highest=1.0)


# -- paired tests -----------------------------------------------------------------------------

# Accuracies are counts over a test set (k / 10000 on MNIST), so equal differences can come
# out of float subtraction with a spread of 1e-17 instead of 0; any spread below this is none.
SPREAD_RESOLUTION = 1e-9


@dataclass(frozen=True)
class Paired:
    """The differences first[seed] - second[seed] over the seeds both have."""

    mean: float
    std: float
    n: int

    def p_above(self, shift: float) -> float:
        """One-sided p-value of the paired t-test of "mean difference <= shift" (small
        when the differences are clearly above ``shift``); 1.0 below two shared seeds.

        When every seed shows the same difference (a 4-point XOR test set can do that) the
        t statistic is undefined; the sign test takes over: n differences all on the same
        side of ``shift`` have probability 2^-n under the null."""
        if self.n < 2:
            return 1.0
        if self.std < SPREAD_RESOLUTION:
            return 0.5**self.n if self.mean > shift else 1.0
        return t_sf((self.mean - shift) / (self.std / math.sqrt(self.n)), self.n - 1)


def paired(first: dict[int, float], second: dict[int, float]) -> Paired | None:
    """The paired differences over shared seeds; None when the two share no seed."""
    shared = sorted(set(first) & set(second))
    if not shared:
        return None
    mean, std = mean_and_std([first[s] - second[s] for s in shared])
    return Paired(mean, std, len(shared))


# -- verdicts ---------------------------------------------------------------------------------

BEST, BEHIND, WITHIN, OPEN, NO_VERDICT = "best", "behind", "within", "open", "no verdict"
DECIDED = (BEST, BEHIND, WITHIN)

ONE_SEED_NOTE = (
    "one seed per variant: no spread to judge by, so no interval and no verdict; "
    "use --seeds 3 or more (or --seeds auto) to test the differences"
)


@dataclass(frozen=True)
class Verdict:
    """One variant's row: its accuracy, its paired difference to the best, and its verdict.

    ``label`` is one of BEST ("clearly best": every other variant is clearly behind), BEHIND
    ("clearly behind": its mean is below another variant's), WITHIN ("within D of the best"),
    OPEN (not decided yet) or NO_VERDICT (fewer than two seeds). ``p_behind``/``p_within`` are
    adjusted for every comparison and every look, so a claim holds when one is <= alpha.
    """

    variant: str
    label: str
    summary: str  # the label in words: "clearly behind", "within 0.005 of the best", ...
    reason: str  # one line: what the verdict rests on, or what is still missing
    accuracy: Interval  # over this variant's seeds, inside [0, 1]
    # Paired over shared seeds, None for the best itself. At the verdicts' own level, 1 - 2 alpha /
    # (looks x tests): simultaneous over every pair and look, so an interval below 0 always comes
    # with "clearly behind" (and above -D, against every variant, with "within D").
    diff_to_best: Interval | None
    diff_to_best_marginal: Interval | None  # the same at 1 - alpha for this comparison alone
    p_behind: float | None  # None below two seeds
    p_within: float | None  # None without a tolerance
    behind_of: str | None  # the variant this one was shown to be behind
    decided_at: int | None  # its number of seeds when first decided

    @property
    def seeds(self) -> int:
        return self.accuracy.n

    @property
    def decided(self) -> bool:
        return self.label in DECIDED


@dataclass(frozen=True)
class Decision:
    """The verdicts of one look at a comparison, with what the table says about them."""

    verdicts: dict[str, Verdict]  # in the order the variants were given
    best: str  # the highest mean accuracy (the first on ties): the reference of diff_to_best
    alpha: float
    tolerance: float | None
    look: int
    max_looks: int
    tests: int  # size of the Holm family: both directions of every pair, plus the equivalence tests
    note: str | None  # a one-line caveat for the whole table (one seed, one variant), or None
    # {(v, w): the adjusted p of "v is below w"} for every ordered pair (claims <= alpha hold):
    # any pair's claim, not only against the best (dlcli diagnose --try-fixes: fix vs run)
    behind: dict = field(default_factory=dict)

    @property
    def family(self) -> str:
        """The line under the table saying what the verdicts were adjusted for."""
        k = len(self.verdicts)
        if k < 2:
            return "no comparisons"
        pairs = k * (k - 1) // 2
        parts = f"both directions of {pairs} pair{'s' if pairs > 1 else ''}"
        if self.tolerance is not None:
            parts += f", {k} within-{_points(self.tolerance)} tests"
        text = f"verdicts Holm-adjusted over {self.tests} tests ({parts}) at alpha {self.alpha:g}"
        if self.max_looks > 1:
            text += f", split over {self.max_looks} looks (look {self.look})"
        return text

    @property
    def open(self) -> list[str]:
        return [name for name, verdict in self.verdicts.items() if not verdict.decided]


def _points(value: float) -> str:
    return f"{value:.4g}"


def _flip(difference: Paired | None) -> Paired | None:
    return None if difference is None else Paired(-difference.mean, difference.std, difference.n)


def decide(
    accuracies: dict[str, dict[int, float]],
    *,
    alpha: float = 0.05,
    tolerance: float | None = None,
    look: int = 1,
    max_looks: int = 1,
    earlier: Decision | None = None,
) -> Decision:
    """The verdicts at one look. ``accuracies`` is ``{variant: {seed: accuracy}}``.

    Every claim comes from one Holm family at level ``alpha / max_looks``: for every ordered
    pair (v, w) "v is not below w" (rejected: v is clearly behind, it cannot be the best),
    and with ``tolerance=D`` for every v "v is more than D below the best", tested as an
    intersection-union of paired non-inferiority t-tests against every other variant (each
    at full level; rejected: v is within D of the best). With a fixed number of seeds use
    ``look=1, max_looks=1``. For seeds added after looking, ``max_looks`` is the number of
    seed counts the design allows (``looks_for``) and ``look`` the position in
    ``seed_counts`` of the most seeds any variant has now (it can repeat when a round only
    tops up a variant that fell behind); pass the previous Decision as ``earlier``: claims
    once made are kept. Alpha is split over seed counts rather than rounds because a paired
    test can only be computed at that many sample sizes, whatever the rounds did.
    ``replay`` does this bookkeeping from the results alone.
    """
    _check(accuracies, alpha, tolerance, look, max_looks)
    names = list(accuracies)
    if earlier is not None:
        _check_continues(earlier, names, alpha, tolerance, look, max_looks)
    level = 1.0 - alpha
    means = {name: math.fsum(accuracies[name].values()) / len(accuracies[name]) for name in names}
    best = max(names, key=lambda name: means[name])
    if len(names) == 1:
        only = _verdict(names[0], NO_VERDICT, "no verdict", "nothing to compare it with",
                        accuracies[names[0]], level)  # fmt: skip
        return Decision({names[0]: only}, best, alpha, tolerance, look, max_looks, 0,
                        "one variant: nothing to compare it with")  # fmt: skip

    differences: dict[tuple[str, str], Paired | None] = {}
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            differences[first, second] = paired(accuracies[first], accuracies[second])
            differences[second, first] = _flip(differences[first, second])

    # The family, fixed before seeing data: "v behind w" for every ordered pair, then "v
    # within D of the best" for every v. Its p-values, in that order.
    behind_tests = [(v, w) for v in names for w in names if w != v]
    above = {}  # p of "w is above v"; the reverse direction of a pair is its complement
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            above[second, first] = _p(differences[first, second], 0.0)
            spread = differences[first, second]
            if spread is not None and spread.n >= 2 and spread.std >= SPREAD_RESOLUTION:
                above[first, second] = 1.0 - above[second, first]
            else:
                above[first, second] = _p(differences[second, first], 0.0)
    p_values = [above[v, w] for v, w in behind_tests]
    if tolerance is not None:
        p_values += [max(_p(differences[v, w], -tolerance) for w in names if w != v) for v in names]
    adjusted, _ = holm(p_values, alpha)
    simultaneous = 1.0 - 2.0 * alpha / (max_looks * len(p_values))
    # Bonferroni over looks: Holm at alpha / max_looks, reported as one p against alpha.
    adjusted = [min(1.0, p * max_looks) for p in adjusted]

    verdicts = {}
    for v in names:
        n = len(accuracies[v])
        p_behind, behind_of = min((adjusted[i], w) for i, (u, w) in enumerate(behind_tests) if u == v)
        versus_best = adjusted[behind_tests.index((v, best))] if v != best else 1.0
        if versus_best <= alpha:  # name the best when that claim holds too: it reads better
            p_behind, behind_of = versus_best, best
        p_within = None if tolerance is None else adjusted[len(behind_tests) + names.index(v)]
        is_behind = p_behind <= alpha
        is_within = p_within is not None and p_within <= alpha
        decided_at = n if (is_behind or is_within) else None
        before = None if earlier is None else earlier.verdicts[v]
        if before is not None and before.behind_of is not None and not is_behind:
            is_behind, p_behind, behind_of, decided_at = True, before.p_behind, before.behind_of, before.decided_at
        if before is not None and before.label == WITHIN and not is_within:
            is_within, p_within, decided_at = True, before.p_within, before.decided_at
        if before is not None and before.decided_at is not None:
            decided_at = before.decided_at
        verdicts[v] = (is_behind, is_within, p_behind, behind_of, p_within, decided_at)

    all_behind = all(verdicts[v][0] for v in names if v != best)
    rows = {}
    for v in names:
        is_behind, is_within, p_behind, behind_of, p_within, decided_at = verdicts[v]
        seeds = accuracies[v]
        difference = None if v == best else differences[v, best]
        diff_interval = diff_marginal = None
        if difference is not None:  # differences of accuracies lie in [-1, 1]
            diff_interval = _interval(difference.mean, difference.std, difference.n, simultaneous, -1.0, 1.0)
            diff_marginal = _interval(difference.mean, difference.std, difference.n, level, -1.0, 1.0)
        if len(seeds) < 2:
            label, summary, reason = NO_VERDICT, "no verdict", "one seed: no spread to judge by"
            p_behind = p_within = None
        elif v == best and all_behind:
            # Every other variant is shown not to be the best, so the best is this one.
            label, summary = BEST, "clearly best"
            reason = f"every other variant is clearly behind ({_family_brief(verdicts, names, v)})"
        elif is_behind:
            label, summary = BEHIND, "clearly behind"
            gap = differences[v, behind_of]
            reason = (f"below {behind_of} by {-gap.mean:.4f} over {gap.n} paired seeds "
                      f"(adjusted p = {p_behind:.2g})")  # fmt: skip
        elif is_within:
            label, summary = WITHIN, f"within {_points(tolerance)} of the best"
            reason = (f"no variant is more than {_points(tolerance)} above it "
                      f"(adjusted p = {p_within:.2g})")  # fmt: skip
        else:
            label, summary = OPEN, "open"
            reason = _open_reason(v, best, difference, p_behind, p_within, alpha, tolerance)
        rows[v] = Verdict(v, label, summary, reason, accuracy_interval(list(seeds.values()), level=level),
                          diff_interval, diff_marginal, p_behind, p_within, behind_of if is_behind else None,
                          decided_at if label in DECIDED else None)  # fmt: skip

    note = None
    if all(len(accuracies[v]) < 2 for v in names):
        note = ONE_SEED_NOTE
    elif any(len(accuracies[v]) < 2 for v in names):
        note = "variants with one seed get no interval and no verdict; use --seeds 3 or more for all"
    behind = {pair: adjusted[i] for i, pair in enumerate(behind_tests)}
    if earlier is not None:  # claims once made are kept, as the verdicts keep them
        behind = {pair: min(p, earlier.behind.get(pair, 1.0)) if earlier.behind.get(pair, 1.0) <= alpha else p
                  for pair, p in behind.items()}  # fmt: skip
    return Decision(rows, best, alpha, tolerance, look, max_looks, len(p_values), note, behind)


def _p(difference: Paired | None, shift: float) -> float:
    return 1.0 if difference is None else difference.p_above(shift)


def _verdict(name, label, summary, reason, seeds, level) -> Verdict:
    return Verdict(name, label, summary, reason, accuracy_interval(list(seeds.values()), level=level),
                   None, None, None, None, None, None)  # fmt: skip


def _family_brief(verdicts, names, best) -> str:
    worst = max(verdicts[v][2] for v in names if v != best)
    return f"largest adjusted p = {worst:.2g}"


def _open_reason(v, best, difference, p_behind, p_within, alpha, tolerance) -> str:
    if v == best:
        return "the highest mean, but not clearly ahead of every other variant"
    if difference is None or difference.n < 2:
        return f"fewer than two seeds shared with {best}"
    text = f"{difference.mean:+.4f} vs {best} over {difference.n} paired seeds; adjusted p = {p_behind:.2g} for behind"
    if tolerance is not None:
        text += f", {p_within:.2g} for within {_points(tolerance)}"
    return text + f" (needs <= {alpha:g})"


def _check(accuracies, alpha, tolerance, look, max_looks) -> None:
    if not accuracies:
        raise ValueError("no variants to decide on")
    for name, seeds in accuracies.items():
        if not seeds:
            raise ValueError(f"variant {name!r} has no seeds")
        for seed, value in seeds.items():
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f"accuracy of {name!r} seed {seed} is {value!r}, not in [0, 1]")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if tolerance is not None and not 0.0 < tolerance < 1.0:
        raise ValueError(f"tolerance must be in (0, 1) accuracy points, got {tolerance}")
    if not 1 <= look <= max_looks:
        raise ValueError(f"look {look} is outside 1..{max_looks}")


def _check_continues(earlier: Decision, names, alpha, tolerance, look, max_looks) -> None:
    if list(earlier.verdicts) != names:
        raise ValueError("the earlier decision is about other variants")
    if (earlier.alpha, earlier.tolerance, earlier.max_looks) != (alpha, tolerance, max_looks):
        raise ValueError("the earlier decision used another alpha, tolerance or number of looks")
    if earlier.look > look:
        raise ValueError(f"look {look} comes before the earlier look {earlier.look}")


# -- adding seeds after looking ---------------------------------------------------------------


def seed_counts(min_seeds: int, max_seeds: int, step: int = 1) -> list[int]:
    """The numbers of seeds a variant can have at the looks: min, min + step, ..., max."""
    if not 2 <= min_seeds <= max_seeds:
        raise ValueError(f"need 2 <= min_seeds <= max_seeds, got {min_seeds} and {max_seeds}")
    if step < 1:
        raise ValueError(f"step must be at least 1, got {step}")
    return list(range(min_seeds, max_seeds, step)) + [max_seeds]


def looks_for(min_seeds: int, max_seeds: int, step: int = 1) -> int:
    """How many looks a design from min_seeds to max_seeds (adding ``step`` seeds a round)
    can take: the number alpha is split over. It is also the most sample sizes any paired
    test can be computed at, which is what the split has to cover."""
    return len(seed_counts(min_seeds, max_seeds, step))


@dataclass(frozen=True)
class Round:
    """What to do after a look: seed counts to reach (variant -> seeds), or why to stop."""

    seeds: dict[str, int]
    stop: str | None  # "all decided after 5 seeds (17 runs)", "budget of 10 seeds reached: ..."


def next_round(decision: Decision, *, max_seeds: int, step: int = 1) -> Round:
    """Which variants get more seeds before the next look: the open ones, and the best too
    (the open comparisons are paired with it by seed; when the best itself is the open one,
    the runner-up as well). Stops when nothing is open or the budget is spent."""
    verdicts = decision.verdicts
    counts = {name: verdict.seeds for name, verdict in verdicts.items()}
    runs = sum(counts.values())
    if len(verdicts) < 2:
        return Round({}, "one variant: nothing to compare it with")
    still_open = decision.open
    if not still_open:
        return Round({}, f"all decided after {max(counts.values())} seeds ({runs} runs)")
    needing = list(still_open)
    if decision.best not in needing:
        needing.append(decision.best)
    elif len(still_open) == 1:
        runner_up = max((v for v in verdicts if v != decision.best), key=lambda v: verdicts[v].accuracy.mean)
        needing.append(runner_up)
    target = min(max_seeds, max(counts[v] for v in needing) + step)
    seeds = {v: target for v in verdicts if v in needing and counts[v] < target}
    if not seeds:
        # The best is open whenever another is; name it alone only when it is all that is open.
        others = [v for v in still_open if v != decision.best]
        pending = ", ".join(f"{v} vs {decision.best}" for v in others) or f"{decision.best} not clearly ahead"
        return Round({}, f"budget of {max_seeds} seeds reached: {pending} still open ({runs} runs)")
    return Round(seeds, None)


def replay(
    accuracies: dict[str, dict[int, float]],
    *,
    min_seeds: int,
    max_seeds: int,
    step: int = 1,
    alpha: float = 0.05,
    tolerance: float | None = None,
) -> Decision:
    """The decision of a ``--seeds auto`` design from its results alone (e.g. a ledger):
    the looks are replayed on each variant's first seeds (in seed order) at every count of
    ``seed_counts``, keeping claims once made. Calling this after every round, and
    ``next_round`` on its result, gives the same answer live and on a rerun; a rerun with a
    bigger ``max_seeds`` re-decides everything at the stricter split of alpha."""
    counts = seed_counts(min_seeds, max_seeds, step)
    most = max(len(seeds) for seeds in accuracies.values())
    decision = None
    for look, count in enumerate(counts, 1):
        prefix = {name: dict(sorted(seeds.items())[:count]) for name, seeds in accuracies.items()}
        decision = decide(prefix, alpha=alpha, tolerance=tolerance, look=look, max_looks=len(counts),
                          earlier=decision)  # fmt: skip
        if count >= most:
            break
    return decision
