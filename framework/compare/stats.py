"""Paired comparisons over seeds, and seeds that changed nothing.

Two settings swept over the same seeds are compared seed by seed: d_s = other_s − baseline_s.
With n seeds, the mean difference d̄ has the 95 % t confidence interval

    d̄ ± t_{0.975, n−1} · s_d / √n        (s_d: sample standard deviation of the d_s)

and the exact two-sided sign test counts the seeds where the other setting is above / below
the baseline (ties dropped): p = min(1, 2 · P[Bin(m, ½) ≤ min(k₊, k₋)]). With fewer than six
seeds no sign pattern reaches p < 0.05 (the smallest p is 2/2ⁿ), which the report says.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from sparseland.compare.table import SEED_PARAM, Comparison, Group, label, sort_key

CONFIDENCE = 0.95
SIGN_TEST_MIN_SEEDS = 6  # below this, the exact sign test cannot reach p < 0.05


@dataclass
class PairedDifference:
    """``other − baseline`` of one metric over the seeds both were run with."""

    metric: str
    baseline: str
    other: str
    seeds: list[str]
    differences: list[float]

    @property
    def n(self) -> int:
        return len(self.differences)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.differences) if self.differences else math.nan

    @property
    def sd(self) -> float:
        return statistics.stdev(self.differences) if self.n > 1 else math.nan

    @property
    def t_quantile(self) -> float:
        """t_{0.975, n−1}: 4.303 for n = 3 seeds."""
        from scipy.stats import t

        return float(t.ppf(0.5 + CONFIDENCE / 2, self.n - 1)) if self.n > 1 else math.nan

    @property
    def ci(self) -> tuple[float, float]:
        half = self.t_quantile * self.sd / math.sqrt(self.n) if self.n > 1 else math.nan
        return self.mean - half, self.mean + half

    @property
    def signs(self) -> tuple[int, int]:
        """Seeds where the other setting is above, and below, the baseline."""
        return sum(d > 0 for d in self.differences), sum(d < 0 for d in self.differences)

    @property
    def sign_p(self) -> float:
        """Exact two-sided sign-test p-value (ties dropped); 1.0 when every seed ties."""
        above, below = self.signs
        m = above + below
        if m == 0:
            return 1.0
        tail = sum(math.comb(m, i) for i in range(min(above, below) + 1)) / 2**m
        return min(1.0, 2.0 * tail)


def per_seed(group: Group, metric: str) -> dict[str, float]:
    """The metric per seed (the mean where several runs share a seed)."""
    values: dict[str, list[float]] = {}
    for run in group.runs:
        if metric in run.metrics:
            values.setdefault(run.params.get(SEED_PARAM, "?"), []).append(run.metrics[metric])
    return {seed: statistics.fmean(v) for seed, v in values.items()}


def paired(baseline: Group, other: Group, metric: str, keys: Sequence[str]) -> PairedDifference:
    a, b = per_seed(baseline, metric), per_seed(other, metric)
    seeds = sorted(set(a) & set(b), key=sort_key)
    return PairedDifference(
        metric,
        label(keys, baseline.key),
        label(keys, other.key),
        seeds,
        [b[s] - a[s] for s in seeds],
    )


def paired_differences(
    comparison: Comparison, baseline: str | None = None
) -> list[PairedDifference]:
    """Every other group against the baseline group (its label, default: the first group),
    per metric, over their common seeds."""
    groups = comparison.groups
    if len(groups) < 2:
        return []
    labels = [label(comparison.group_by, g.key) for g in groups]
    if baseline is None:
        base = 0
    elif baseline in labels:
        base = labels.index(baseline)
    else:
        from sparseland.compare.query import CompareError

        raise CompareError(
            f"--baseline '{baseline}' is not a row of this comparison; rows: {', '.join(labels)}."
        )
    return [
        paired(groups[base], g, metric, comparison.group_by)
        for i, g in enumerate(groups)
        if i != base
        for metric in comparison.metrics
    ]


def identical_seeds(comparison: Comparison) -> list[str]:
    """A warning for each group whose runs with different seeds logged identical metrics
    (time metrics, which vary by themselves, left out)."""
    warnings = []
    for g in comparison.groups:
        seeds = g.seeds
        checked = [
            m
            for m in comparison.metrics
            if len(g.values(m)) > 1
            and getattr(comparison.specs.get(m), "space", "") != "time"
            and not m.endswith("time_s")
        ]
        if len(seeds) < 2 or not checked:
            continue
        if all(len(set(g.values(m))) == 1 for m in checked):
            warnings.append(
                f"{label(comparison.group_by, g.key)}: its {len(g.runs)} runs (seeds "
                f"{', '.join(seeds)}) have identical {', '.join(checked)}: the seed changed "
                "nothing, so the ± 0 is no precision. Either the method is deterministic given "
                "the data or the seed does not reach the data draw."
            )
    return warnings


def _fmt(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.4g}"


def to_markdown(differences: Sequence[PairedDifference], comparison: Comparison) -> str:
    """The section of the report with the paired differences."""
    if not differences:
        return ""
    lines = [
        f"## Paired differences (other − {differences[0].baseline}, seed by seed)",
        "",
        f"mean difference over the n common seeds, its {CONFIDENCE:.0%} t confidence interval "
        "(mean ± t·sd/√n), and the exact two-sided sign test (seeds above/below).",
        "",
        "| other | metric | n | mean difference | 95 % CI | sd | above/below | sign p |",
        "|---|---|---:|---:|---|---:|---:|---:|",
    ]
    few = False
    for d in differences:
        spec = comparison.specs.get(d.metric)
        metric = d.metric if spec is None else f"{d.metric} {spec.arrow}"
        low, high = d.ci
        ci = "–" if math.isnan(low) else f"[{low:.4g}, {high:.4g}]"
        above, below = d.signs
        few = few or 0 < d.n < SIGN_TEST_MIN_SEEDS
        lines.append(
            f"| {d.other} | {metric} | {d.n} | {_fmt(d.mean)} | {ci} | {_fmt(d.sd)} | "
            f"{above}/{below} | {d.sign_p:.3g} |"
        )
    if any(d.n == 0 for d in differences):
        lines += ["", "n = 0: the two rows share no seed; run them with the same seeds."]
    if few:
        lines += [
            "",
            f"With fewer than {SIGN_TEST_MIN_SEEDS} seeds the sign test cannot reach p < 0.05 "
            "(its smallest p is 2/2ⁿ): rely on the t interval, or add seeds.",
        ]
    return "\n".join(lines) + "\n"


def write_csv(differences: Sequence[PairedDifference], path: str) -> None:
    import csv

    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        head = "baseline other metric n seeds mean sd t ci_low ci_high above below sign_p"
        writer.writerow(head.split())
        for d in differences:
            low, high = d.ci
            row = [d.baseline, d.other, d.metric, d.n, ";".join(d.seeds), d.mean, d.sd]
            writer.writerow([*row, d.t_quantile, low, high, *d.signs, d.sign_p])
