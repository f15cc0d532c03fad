"""dlcli.verdicts: the Student t distribution, Holm, bounded intervals, and the sequential
verdicts of `--seeds auto`, checked by simulation (no training).

Every simulation states its Monte Carlo error: a rate estimated from n independent
simulations has standard error SE = sqrt(a (1 - a) / n); a bound "rate <= alpha" is asserted as
rate <= alpha + 3 SE, a "must exceed" as rate > alpha + 3 SE.
"""

import math
import random
import statistics

import pytest
from conftest import assert_python_runs

from dlcli import verdicts as V

ALPHA = 0.05

# -- Student t against table values -----------------------------------------------------------

# t(p, df) from a printed table (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2), 3 decimals.
T_TABLE = [
    (0.975, 1, 12.706), (0.975, 2, 4.303), (0.975, 3, 3.182), (0.975, 4, 2.776), (0.975, 5, 2.571),
    (0.975, 9, 2.262), (0.975, 10, 2.228), (0.975, 20, 2.086), (0.975, 30, 2.042), (0.975, 100, 1.984),
    (0.95, 1, 6.314), (0.95, 10, 1.812), (0.90, 5, 1.476), (0.99, 4, 3.747), (0.995, 5, 4.032),
    (0.999, 3, 10.215), (0.9995, 1, 636.619), (0.9995, 10, 4.587), (0.99, 60, 2.390),
]  # fmt: skip


@pytest.mark.parametrize("p, df, expected", T_TABLE)
def test_t_quantile_matches_the_printed_table(p, df, expected):
    assert V.t_quantile(p, df) == pytest.approx(expected, abs=6e-4)
    assert V.t_cdf(expected, df) == pytest.approx(p, abs=1e-3 * (1 - p) + 1e-6)
    assert V.t_quantile(1 - p, df) == -V.t_quantile(p, df)


def test_t_distribution_matches_closed_forms_far_into_the_tails():
    # df = 1 is the Cauchy distribution, df = 2 has a closed form: exact references.
    for t in [0.0, 0.01, 0.5, 1.0, 2.5, 10.0, 100.0, 1e4, -3.0]:
        assert V.t_sf(t, 1) == pytest.approx(0.5 - math.atan(t) / math.pi, rel=1e-11, abs=1e-15)
        assert V.t_sf(t, 2) == pytest.approx(0.5 - t / (2 * math.sqrt(2 + t * t)), rel=1e-11, abs=1e-15)
    for p in [0.6, 0.975, 0.999, 1 - 1e-7]:
        assert V.t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-9)
        assert V.t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-9)
    # Large df tends to the normal; the cdf and the quantile invert each other.
    assert V.t_quantile(0.975, 10**6) == pytest.approx(1.959966, abs=1e-5)
    for df in [1, 3, 7, 25]:
        for p in [0.51, 0.8, 0.99, 0.9999]:
            assert V.t_cdf(V.t_quantile(p, df), df) == pytest.approx(p, abs=1e-12)
    assert V.t_sf(math.inf, 3) == 0.0 and V.t_sf(-math.inf, 3) == 1.0


def test_regularized_beta_known_values():
    for x in [0.1, 0.37, 0.9]:
        assert V.regularized_beta(x, 1, 1) == pytest.approx(x)
        assert V.regularized_beta(x, 3.5, 1) == pytest.approx(x**3.5)
        assert V.regularized_beta(x, 2, 3) + V.regularized_beta(1 - x, 3, 2) == pytest.approx(1.0)
    assert V.regularized_beta(0.5, 7.5, 7.5) == pytest.approx(0.5)


def test_verdicts_import_only_the_standard_library():
    # The statistics run in the CLI's process before anything trains: no numpy, scipy, TF.
    assert_python_runs(
        "import sys, dlcli.verdicts\n"
        "heavy = {'numpy', 'scipy', 'tensorflow', 'keras', 'click'} & set(sys.modules)\n"
        "assert not heavy, heavy"
    )


# -- Holm ------------------------------------------------------------------------------------------


def test_holm_gives_the_textbook_decisions():
    # m = 5: 0.001*5 = 0.005 rejects, 0.011*4 = 0.044 rejects, 0.02*3 = 0.06 fails and stops the
    # step-down, so 0.045 stays unrejected although 0.045*1 <= 0.05 on its own. Bonferroni
    # (p*5 <= 0.05) would reject only the first: Holm rejects more and still controls the FWER.
    p = [0.04, 0.001, 0.045, 0.02, 0.011]
    adjusted, rejected = V.holm(p, 0.05)
    assert adjusted == pytest.approx([0.08, 0.005, 0.08, 0.06, 0.044])
    assert rejected == [False, True, False, False, True]
    assert sum(x * len(p) <= 0.05 for x in p) == 1
    # The classic four: 0.005*4, 0.01*3 reject; 0.03*2 = 0.06 stops.
    assert V.holm([0.01, 0.04, 0.03, 0.005], 0.05)[1] == [True, False, False, True]
    assert V.holm([], 0.05) == ([], [])


# -- intervals -------------------------------------------------------------------------------------


def test_accuracy_interval_near_one_with_two_seeds_stays_inside_and_is_marked():
    interval = V.accuracy_interval([0.998, 1.0])
    raw = V.mean_interval([0.998, 1.0])  # the plain t interval: 0.999 +- 12.706 * 0.001
    assert raw.high == pytest.approx(0.999 + 12.706205 * 0.001, rel=1e-6) and raw.high > 1.0
    assert interval.high == 1.0 and interval.low == raw.low and interval.clipped and not raw.clipped
    assert 0.0 <= interval.low <= interval.mean <= interval.high <= 1.0
    assert V.accuracy_interval([0.0, 0.004]).low == 0.0
    inside = V.accuracy_interval([0.9612, 0.9587, 0.9633, 0.9601, 0.9625])
    # scipy.stats.t.interval(0.95, 4, mean, sem) of these five.
    assert (inside.low, inside.high) == (pytest.approx(0.9588745286058963, abs=1e-12),
                                         pytest.approx(0.963445471394104, abs=1e-12))  # fmt: skip
    assert not inside.clipped
    single = V.accuracy_interval([0.9])
    assert single.low is None and single.high is None and single.std == 0.0


def test_bounded_interval_keeps_its_coverage_near_one():
    # Seeds near the bound, like a good MNIST net: each seed's true accuracy from a Beta with
    # mean 0.996 and sd 0.0015 (skewed by the bound), then 10,000 test examples counted. With 2
    # and 3 seeds the raw t interval passes 1.0 most of the time. n = 4000 per seed count, SE of a
    # coverage near 0.95 = sqrt(.95 * .05 / 4000) = 0.0034; assert coverage >= 0.95 - 3 SE.
    rng = random.Random(0)
    mean, sd, test_set, n_sims = 0.996, 0.0015, 10_000, 4000
    total = mean * (1 - mean) / sd**2 - 1
    a, b = mean * total, (1 - mean) * total
    se = math.sqrt(0.95 * 0.05 / n_sims)
    for seeds in (2, 3):
        covered = clipped = 0
        for _ in range(n_sims):
            values = []
            for _ in range(seeds):
                p = rng.betavariate(a, b)  # counts of correct answers, normal approximation to the binomial
                correct = round(rng.gauss(test_set * p, math.sqrt(test_set * p * (1 - p))))
                values.append(min(test_set, correct) / test_set)
            interval, raw = V.accuracy_interval(values), V.mean_interval(values)
            assert 0.0 <= interval.low <= interval.high <= 1.0
            # Clipping removes only impossible values: it covers exactly when the raw one does.
            assert (interval.low <= mean <= interval.high) == (raw.low <= mean <= raw.high)
            covered += interval.low <= mean <= interval.high
            clipped += interval.clipped
        assert covered / n_sims >= 0.95 - 3 * se, (seeds, covered / n_sims)
        assert clipped / n_sims > 0.3  # the case the bound is about really happened


# -- paired tests and one look ---------------------------------------------------------------------


def test_paired_differences_use_shared_seeds_and_survive_zero_spread():
    difference = V.paired({0: 0.5, 1: 0.6, 5: 0.9}, {1: 0.4, 0: 0.45, 7: 0.1})
    assert (difference.n, difference.mean) == (2, pytest.approx(0.125))
    assert V.paired({0: 0.5}, {1: 0.4}) is None
    # XOR-like: every seed shows the same difference, so no t statistic; the sign test answers.
    same = V.paired({s: 1.0 for s in range(4)}, {s: 0.75 for s in range(4)})
    assert same.p_above(0.0) == 0.5**4 and same.p_above(0.3) == 1.0
    # The float-noise version of the same thing (k / 10000 accuracies) is treated alike.
    noisy = V.paired({0: 0.9612, 1: 0.9587, 2: 0.9633}, {0: 0.9570, 1: 0.9545, 2: 0.9591})
    assert noisy.std < V.SPREAD_RESOLUTION and noisy.p_above(0.0) == 0.125
    # scipy.stats.ttest_rel(a, b, alternative="greater").pvalue
    a = [0.9612, 0.9587, 0.9633, 0.9601, 0.9625]
    b = [0.9570, 0.9581, 0.9598, 0.9555, 0.9610]
    assert V.paired(dict(enumerate(a)), dict(enumerate(b))).p_above(0.0) == pytest.approx(0.01051602915034021, rel=1e-9)


def test_one_seed_gives_no_verdict_and_says_which_option_would():
    decision = V.decide({"relu": {0: 0.97}, "sigmoid": {0: 0.84}, "tanh": {0: 0.96}})
    assert {v.label for v in decision.verdicts.values()} == {V.NO_VERDICT}
    assert all(v.accuracy.low is None and v.p_behind is None for v in decision.verdicts.values())
    assert "--seeds" in decision.note and "\n" not in decision.note
    alone = V.decide({"relu": {0: 0.97, 1: 0.96, 2: 0.965}})
    assert alone.verdicts["relu"].label == V.NO_VERDICT and "nothing to compare" in alone.note


def lecture_like(seeds: int, rng: random.Random) -> dict[str, dict[int, float]]:
    """Seven variants like `compare --what all`: sigmoid far behind, the rest close."""
    means = {"sigmoid": 0.84, "relu-normal": 0.955, "relu-xavier": 0.962, "relu-he": 0.963,
             "dropout": 0.960, "batchnorm": 0.966, "tanh": 0.95}  # fmt: skip
    shared = [rng.gauss(0, 0.01) for _ in range(seeds)]
    return {name: {s: mean + shared[s] + rng.gauss(0, 0.005) for s in range(seeds)} for name, mean in means.items()}


def test_decide_gives_the_rows_the_table_prints():
    rng = random.Random(0)
    decision = V.decide(lecture_like(4, rng), alpha=ALPHA)
    assert decision.tests == 42 and "Holm-adjusted over 42 tests (both directions of 21 pairs)" in decision.family
    sigmoid = decision.verdicts["sigmoid"]
    assert sigmoid.label == V.BEHIND and sigmoid.summary == "clearly behind" and sigmoid.p_behind <= ALPHA
    assert sigmoid.diff_to_best.high < 0 and sigmoid.decided_at == 4
    assert sigmoid.diff_to_best.level == pytest.approx(1 - 2 * ALPHA / 42)
    assert sigmoid.diff_to_best_marginal.level == 1 - ALPHA
    assert decision.verdicts[decision.best].diff_to_best is None
    for verdict in decision.verdicts.values():
        assert 0.0 <= verdict.accuracy.low <= verdict.accuracy.high <= 1.0
        assert verdict.reason and "\n" not in verdict.reason
    with_tolerance = V.decide(lecture_like(8, rng), tolerance=0.02, look=2, max_looks=8)
    assert with_tolerance.tests == 49 and "split over 8 looks" in with_tolerance.family
    assert with_tolerance.verdicts["sigmoid"].label == V.BEHIND
    assert {v.label for v in with_tolerance.verdicts.values()} <= {V.BEHIND, V.WITHIN, V.OPEN, V.BEST}


def test_decide_refuses_inconsistent_arguments():
    good = {"a": {0: 0.9, 1: 0.91}, "b": {0: 0.8, 1: 0.82}}
    for bad in [{"alpha": 0.0}, {"alpha": 1.5}, {"tolerance": 0.0}, {"look": 3, "max_looks": 2}]:
        with pytest.raises(ValueError):
            V.decide(good, **bad)
    with pytest.raises(ValueError, match="not in"):
        V.decide({"a": {0: 1.2}, "b": {0: 0.5}})
    first = V.decide(good, look=1, max_looks=3)
    with pytest.raises(ValueError, match="another alpha"):
        V.decide(good, look=2, max_looks=4, earlier=first)
    with pytest.raises(ValueError, match="comes before"):
        V.decide(good, look=1, max_looks=3, earlier=V.decide(good, look=2, max_looks=3))


# -- the sequential design -------------------------------------------------------------------------

MIN_SEEDS, MAX_SEEDS = 3, 10
NOISE, SHARED = 0.005, 0.01  # seed-to-seed sd of one variant's accuracy, and of a seed's shared luck


class Simulated:
    """A comparison whose accuracies are drawn, not trained: variant mean + the seed's shared
    part (a lucky seed is lucky for every variant, which pairing cancels) + own noise."""

    def __init__(self, rng: random.Random, shifts: list[float]):
        self.rng, self.shifts, self.luck = rng, shifts, []
        self.accuracies = {f"v{i}": {} for i in range(len(shifts))}

    def train(self, name: str, seeds: int) -> None:
        while len(self.luck) < seeds:
            self.luck.append(self.rng.gauss(0, SHARED))
        runs = self.accuracies[name]
        for seed in range(len(runs), seeds):
            runs[seed] = 0.90 + self.shifts[int(name[1:])] + self.luck[seed] + self.rng.gauss(0, NOISE)


def seeds_auto(rng, shifts, *, tolerance=None, corrected=True):
    """The loop `compare --seeds auto` runs: look, decide, add seeds to what is open.
    corrected=False is the same loop with the repeated-looks correction removed (every look
    treated as the only one); its claims are collected over all looks, as a user stopping at the
    first verdict would see them. Returns (final decision, stop reason, claims ever made)."""
    comparison = Simulated(rng, shifts)
    for name in comparison.accuracies:
        comparison.train(name, MIN_SEEDS)
    counts = V.seed_counts(MIN_SEEDS, MAX_SEEDS)
    decision, claims = None, set()
    while True:
        look = counts.index(max(len(runs) for runs in comparison.accuracies.values())) + 1
        if corrected:
            decision = V.decide(comparison.accuracies, alpha=ALPHA, tolerance=tolerance, look=look,
                                max_looks=len(counts), earlier=decision)  # fmt: skip
        else:
            decision = V.decide(comparison.accuracies, alpha=ALPHA, tolerance=tolerance)
        claims |= {(v.variant, v.label) for v in decision.verdicts.values() if v.label in (V.BEHIND, V.WITHIN)}
        for verdict in decision.verdicts.values():  # the printed interval never contradicts the verdict
            if verdict.diff_to_best is not None and verdict.diff_to_best.high < 0:
                assert verdict.label == V.BEHIND, verdict
        step = V.next_round(decision, max_seeds=MAX_SEEDS)
        if step.stop:
            assert all(len(runs) <= MAX_SEEDS for runs in comparison.accuracies.values())
            return decision, step.stop, claims, comparison.accuracies
        assert all(seeds in counts for seeds in step.seeds.values())
        for name, seeds in step.seeds.items():
            comparison.train(name, seeds)


def rate_and_bound(count: int, n: int) -> tuple[float, float]:
    rate = count / n
    return rate, 3 * math.sqrt(ALPHA * (1 - ALPHA) / n)


@pytest.mark.slow  # a simulation of thousands of comparisons (seconds)
def test_equal_variants_get_no_false_behind_verdict_under_repeated_looks():
    # 3 variants with the same mean, seeds added only to open ones until 10. Any "clearly
    # behind" is false (measured near 0.036). n = 4000: SE at alpha = sqrt(.05 * .95 / 4000)
    # = 0.0034.
    rng, n = random.Random(0), 4000
    false = sum(bool(seeds_auto(rng, [0.0] * 3)[2]) for _ in range(n))
    rate, three_se = rate_and_bound(false, n)
    assert rate <= ALPHA + three_se, rate


@pytest.mark.slow  # a simulation of thousands of comparisons (seconds)
def test_without_the_repeated_looks_correction_false_verdicts_exceed_alpha():
    # The same simulation, each look treated as if it were the only one: the peeking inflates
    # the false-verdict rate well past alpha (measured near 0.18). n = 2000: 3 SE = 0.0146.
    rng, n = random.Random(0), 2000
    false = sum(bool(seeds_auto(rng, [0.0] * 3, corrected=False)[2]) for _ in range(n))
    rate, three_se = rate_and_bound(false, n)
    assert rate > ALPHA + three_se, rate


def test_a_difference_of_two_noise_sds_is_found_within_a_few_rounds():
    # v1 is 2 * NOISE below v0. n = 1000 simulations; power measured near 0.82 by 10 seeds.
    rng, n = random.Random(0), 1000
    found_at = []
    for _ in range(n):
        decision, stop, _, _ = seeds_auto(rng, [0.0, -2 * NOISE])
        if decision.verdicts["v1"].label == V.BEHIND:
            found_at.append(decision.verdicts["v1"].decided_at)
            assert stop.startswith("all decided after") and decision.verdicts["v0"].label == V.BEST
        else:
            assert stop.startswith("budget of 10 seeds reached: v1 vs v0 still open")
    power = len(found_at) / n  # SE <= 0.016
    assert power >= 0.75, power
    assert statistics.median(found_at) <= 7  # 3 seeds, then at most 4 rounds for half of them


def test_within_tolerance_is_not_claimed_for_a_variant_exactly_d_behind():
    # Equivalence: v1 is exactly D below v0, so "v1 within D of the best" is false (the null's
    # boundary, where a test is least conservative). n = 2000: 3 SE = 0.0146.
    rng, n, tolerance = random.Random(1), 2000, 0.01
    false = 0
    for _ in range(n):
        _, _, claims, _ = seeds_auto(rng, [0.0, -tolerance], tolerance=tolerance)
        false += ("v1", V.WITHIN) in claims
    rate, three_se = rate_and_bound(false, n)
    assert rate <= ALPHA + three_se, rate


def test_near_ties_stop_early_with_a_tolerance():
    rng, n = random.Random(2), 300
    decided = 0
    for _ in range(n):
        decision, stop, _, _ = seeds_auto(rng, [0.0, 0.0, -0.04], tolerance=0.02)
        decided += stop.startswith("all decided")
        assert decision.verdicts["v2"].label in (V.BEHIND, V.OPEN)
    assert decided / n > 0.8


def test_the_observed_best_needs_every_pair_in_the_family():
    # One look, 5 seeds, 3 equal variants. Testing each variant against the observed best with
    # Holm over only the k - 1 = 2 comparisons ignores that the best was picked as the top of 3:
    # its false-verdict rate is near 0.11. decide() counts both directions of all 3 pairs.
    # n = 4000: 3 SE = 0.0103.
    rng, n = random.Random(0), 4000
    naive = ours = 0
    for _ in range(n):
        comparison = Simulated(rng, [0.0, 0.0, 0.0])
        for name in comparison.accuracies:
            comparison.train(name, 5)
        accuracies = comparison.accuracies
        best = max(accuracies, key=lambda v: sum(accuracies[v].values()))
        p = [V.paired(accuracies[best], accuracies[v]).p_above(0.0) for v in accuracies if v != best]
        naive += any(V.holm(p, ALPHA)[1])
        ours += any(v.label == V.BEHIND for v in V.decide(accuracies, alpha=ALPHA).verdicts.values())
    rate, three_se = rate_and_bound(ours, n)
    assert rate <= ALPHA + three_se, rate
    assert naive / n > ALPHA + three_se, naive / n


def test_next_round_adds_seeds_only_where_open_and_says_why_it_stops():
    accuracies = {"a": {s: 0.96 + 0.001 * s for s in range(3)},
                  "b": {s: 0.959 + 0.0012 * s for s in range(3)},
                  "sigmoid": {s: 0.80 - 0.002 * s for s in range(3)}}  # fmt: skip
    decision = V.decide(accuracies, look=1, max_looks=V.looks_for(3, 10))
    assert decision.verdicts["sigmoid"].label == V.BEHIND and decision.open == ["a", "b"]
    step = V.next_round(decision, max_seeds=10)
    assert step.stop is None and step.seeds == {"a": 4, "b": 4}
    full = {"a": {s: 0.96 for s in range(10)}, "b": {s: 0.96 - 0.001 * (s % 2) for s in range(10)},
            "sigmoid": accuracies["sigmoid"]}  # fmt: skip
    final = V.next_round(V.decide(full, look=8, max_looks=8), max_seeds=10)
    assert final.seeds == {} and final.stop == "budget of 10 seeds reached: b vs a still open (23 runs)"
    done = V.next_round(V.decide({"a": accuracies["a"], "sigmoid": accuracies["sigmoid"]}), max_seeds=10)
    assert done.stop == "all decided after 3 seeds (6 runs)"
    assert V.looks_for(3, 10) == 8 and V.seed_counts(3, 10, 3) == [3, 6, 9, 10]


def test_the_best_gets_seeds_for_pairing_even_when_its_own_verdict_is_decided():
    # a is within 0.01 of the best (its own claim holds) while b is open: b's comparisons are
    # paired with a by seed, so a must get the new seed too or they could never be decided.
    a = {0: 0.960, 1: 0.962, 2: 0.958, 3: 0.961}
    b = {s: a[s] - 0.006 + 0.003 * (1, -1, 1, -1)[s] for s in a}
    decision = V.decide({"a": a, "b": b, "c": {s: 0.80 for s in a}}, tolerance=0.01)
    assert (decision.verdicts["a"].label, decision.verdicts["b"].label) == (V.WITHIN, V.OPEN)
    assert V.next_round(decision, max_seeds=10).seeds == {"a": 5, "b": 5}


def test_within_d_must_hold_against_every_variant_not_just_the_nearest():
    # c is within 0.01 of b but 0.065 below a: it is not within 0.01 of the best.
    accuracies = {"a": {s: 0.96 + 0.001 * (s % 3) for s in range(5)},
                  "b": {s: 0.90 + 0.001 * (s % 2) for s in range(5)},
                  "c": {s: 0.895 - 0.001 * (s % 3) for s in range(5)}}  # fmt: skip
    decision = V.decide(accuracies, tolerance=0.01)
    assert decision.verdicts["c"].p_within == 1.0 and decision.verdicts["a"].p_within < ALPHA


def test_claims_once_made_are_kept_at_later_looks():
    # Look 1 shows b clearly behind; at look 2 new data alone would not (all near-equal now),
    # but the claim was made within look 1's share of alpha and stands, with its evidence.
    clear = {"a": {s: 0.96 + 0.001 * (s % 2) for s in range(3)}, "b": {s: 0.80 + 0.002 * (s % 2) for s in range(3)}}
    first = V.decide(clear, look=1, max_looks=3)
    assert first.verdicts["b"].label == V.BEHIND
    blurred = {"a": {s: 0.9 + 0.01 * (s % 2) for s in range(4)}, "b": {s: 0.9 + 0.01 * (s % 3 == 0) for s in range(4)}}
    assert V.decide(blurred, look=2, max_looks=3).verdicts["b"].label == V.OPEN
    kept = V.decide(blurred, look=2, max_looks=3, earlier=first).verdicts["b"]
    assert (kept.label, kept.decided_at, kept.p_behind) == (V.BEHIND, 3, first.verdicts["b"].p_behind)


def test_replay_from_the_results_gives_the_live_decision():
    # A rerun reads the ledger and replays the looks; it must agree with the live loop.
    rng = random.Random(5)
    for shifts in ([0.0, 0.0, -0.01], [0.0, -0.02, -0.005, 0.0]):
        for _ in range(20):
            live, _, _, accuracies = seeds_auto(rng, shifts)
            again = V.replay(accuracies, min_seeds=MIN_SEEDS, max_seeds=MAX_SEEDS, alpha=ALPHA)
            assert {v: (x.label, x.decided_at) for v, x in again.verdicts.items()} == {
                v: (x.label, x.decided_at) for v, x in live.verdicts.items()
            }
