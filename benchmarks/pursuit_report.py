"""Rendering of benchmarks/results/pursuit.md from pursuit.json."""

from __future__ import annotations

from typing import Any

from harness import table
from pursuit_data import LAM
from pursuit_splits import splits_section


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# Pursuit benchmark ({result['n_signals']} patches, {result['device']})",
        "",
        f"{result['machine']}; torch threads {result['threads']}; dtype {result['dtype']}; "
        f"λ = {LAM}; measured GEMM throughput {result['gemm_gflops']:.1f} GFLOP/s; "
        f"load average at start {result.get('load_average', 'not recorded')}.",
        "Absolute times move with the machine's load; compare the ratios within one run.",
        "",
        "## Lasso: time to mean relative objective gap",
        "",
        "Ratios are times to gap ≤ 1e-3 divided by SPAMS's and by scikit-learn lasso_cd's, "
        "measured in this run; a sweep stops once a run exceeds the time limit.",
        "",
        "| solver | gap ≤ 1e-3 (s) | gap ≤ 1e-5 (s) | vs SPAMS (1e-3) | vs sklearn cd (1e-3) |",
        "|---|---|---|---|---|",
    ]
    by_name = {row["name"]: row["time_to_gap"]["0.001"] for row in result["lasso"]}
    spams_t, sk_t = by_name["spams lasso (LARS)"], by_name["sklearn lasso_cd"]

    def fmt(v: float | None) -> str:
        return f"{v:.3f}" if v is not None else "not reached"

    def ratio(v: float | None, ref: float | None) -> str:
        return f"{v / ref:.2f}×" if v is not None and ref else "–"

    for row in result["lasso"]:
        t3, t5 = row["time_to_gap"]["0.001"], row["time_to_gap"]["1e-05"]
        best = min(point["gap"] for point in row["sweep"])
        t5_text = fmt(t5) if t5 is not None else f"not reached (best {best:.1e})"
        lines.append(
            f"| {row['name']} | {fmt(t3)} | {t5_text} | {ratio(t3, spams_t)} | {ratio(t3, sk_t)} |"
        )
    lines += ["", "## Per-iteration cost (two GEMMs with D per iteration in both)", ""]
    for solver, it in result["per_iteration"].items():
        lines.append(
            f"- {solver}: {it['seconds'] * 1e3:.2f} ms per iteration = {it['gflops']:.1f} GFLOP/s "
            f"of useful matmul work ({100 * it['fraction_of_gemm']:.0f} % of the measured GEMM "
            "rate)."
        )
    lines += exact_section(result.get("exact"))
    lines += [
        "",
        "## OMP, k = 8",
        "",
        "One thread each; the ratio is to SPAMS in the same precision, measured in this run "
        "(load average at the OMP part: "
        f"{result.get('omp_load_average', 'not recorded')}).",
        "",
        "| solver | time (s) | mean ‖x − Dh‖/‖x‖ | max nnz | vs SPAMS, same precision |",
        "|---|---|---|---|---|",
    ]
    spams_by_precision = {
        name.split("(")[-1].rstrip(")"): row["seconds"]
        for row in result["omp"]
        if (name := row["name"]).startswith("spams omp")
    }
    for row in result["omp"]:
        precision = row["name"].split("(")[-1].rstrip(")")
        ref = spams_by_precision.get(precision, spams_by_precision.get("spams omp"))
        lines.append(
            f"| {row['name']} | {row['seconds']:.3f} | {row['mean_rel_residual']:.4f} | "
            f"{row.get('max_nnz', '–')} | {ratio(row['seconds'], ref)} |"
        )
    return "\n".join(lines + NOTES) + "\n"


NOTES = [
    "",
    "## Notes",
    "",
    "- `admm` (plugins/pursuit/admm.py): over-relaxed ADMM (α = 1.8, ρ = 1.6·√λ for unit-norm "
    "signals) with the h-update through the matrix inversion lemma, so each iteration costs the "
    "same two GEMMs with D as a FISTA step; it needs about 20 iterations for a gap of 1e-3 where "
    "FISTA needs about 70–100, because its rate does not depend on ‖D‖² (≈ 14 here); starting "
    "its dual u at the projected dual of z = 0, clip(Dᵀx/ρ, ±λ/ρ), instead of 0 brings that to "
    "about 16 (mean gap after 20 iterations 4.6e-4 against 6.9e-4, one-thread check on these "
    "patches). On the CPU "
    "it solves blocks of 1,024 signals at a time so that the iterates stay in cache: 1.7× "
    "faster than the whole batch at once in the same process (0.21 s against 0.36 s).",
    "- `active_set` (plugins/pursuit/active_set.py): exact Lasso. On the CPU, feature-sign "
    "rounds (Lee et al. 2007) compiled with numba (plugins/pursuit/_feature_sign_compiled.py) "
    "solve one signal at a time from h = 0, as SPAMS's LARS does, with the signals split "
    "between as many threads as torch uses (the kernel runs without Python's interpreter "
    "lock). A round solves on the support with its signs, line-searches to the first sign "
    "change (that atom leaves) or, where the signs hold, lets the most violating atom in; "
    "G_SS⁻¹ is bordered or downdated by one rank-one update per round, the correlations are "
    "recomputed from G only when the signs hold, and an entering atom in the span of the "
    "support swaps with one of its atoms. Every signal is certified by its duality gap "
    "(≤ 1e-9 × the objective), computed from the residual in each thread; the few that are not "
    "go to the warm-started homotopy (Asif and Romberg 2014), the fallback that guarantees "
    "exactness. On these patches every signal reaches its KKT point in the rounds (27 rounds "
    "per signal on average, at most 88; 1.3 µs per round). Stages, medians of 5 on the idle "
    "machine: the rounds alone (with c = Dᵀx and the gaps) 0.38 s on one thread and 0.19 s on "
    "two; the whole call 0.38 s and 0.20 s. A float32 ADMM start, the batched path's, does "
    "not pay here: 10, 15, 20 and 30 ADMM iterations before the rounds gave 0.38, 0.40, 0.43 "
    "and 0.51 s on one thread (0.22, 0.22, 0.25 and 0.28 s on two), against 0.38 and 0.20 s "
    "from h = 0. The batched rounds (the same "
    "algorithm as torch kernels over many signals at once, for GPUs, from 30 ADMM iterations; "
    "`kernel=batched`) are in the same table: on the CPU they are bound by the launch cost of "
    "thousands of small kernels, and two threads of them mostly wait for each other's "
    "interpreter lock. Tried and dropped for the batched path: a pipeline of ADMM beside the "
    "rounds, bfloat16 products in the warm start, stopping each signal's ADMM once its signs "
    "stop changing, adding every violating atom at once (supports blow up to 200+ atoms on "
    "these coherent atoms) or the top 3, dropping every sign-flipping atom at once, and 16 to "
    "40 ADMM iterations (all within the noise or slower). SPAMS's LARS leaves a few signals "
    "far from optimal (max gap/P 0.3). `admm` (the budget that reaches a mean relative "
    "objective gap of 1e-3 in the sweep above) is in the same table.",
    "- OMP (plugins/pursuit/omp.py): Batch-OMP (Rubinstein et al. 2008) with the inverse "
    "Cholesky factor grown one row per step (no triangular solves) and the correlations "
    "recomputed as α = α⁰ − G_{:,I}γ_I. On the CPU it runs compiled with numba, one signal at a "
    "time in cache, the signals split between torch's threads "
    "(plugins/pursuit/_omp_compiled.py); the batched torch version (one fused gather-and-sum "
    "per step over [G; α⁰], float32 selection certified for float64) is the GPU path. On this "
    "machine, in the run before the compiled kernel, the batched version took 1.32× (float32) "
    "and 1.34× (float64) SPAMS's time, 0.92× and 0.95× on an earlier machine with half the GEMM "
    "throughput; the compiled one is in the table. What is left against SPAMS in float32 is "
    "the kernel's scalar argmax |α| per step and writing the dense codes.",
    "- SPAMS's `omp` is not the same selection rule: its supports agree with scikit-learn's OMP "
    "(and Sparseland's) on 57 % of the patches, and its mean residual is lower (0.4566 against "
    "0.4597), as forward selection (order-recursive matching pursuit) would give. spams-bin "
    "2.6's float32 `omp` also returns all-zero codes on some calls unless `eps` and `lambda1` "
    "are passed explicitly, as this benchmark does.",
    "- Run with one thread per library (`--threads 1`); the Lasso reference is SPAMS LARS in "
    "float64, Sparseland runs in float32.",
]


def exact_section(exact: dict[str, Any] | None) -> list[str]:
    """Exact Lasso solvers side by side (and admm to a gap of 1e-3), medians over repeats."""
    if not exact:
        return []
    spams = exact["rows"].get("spams lasso (LARS)", {}).get("median_s")
    rows = []
    for name, row in exact["rows"].items():
        ratio = f"{row['median_s'] / spams:.2f}×" if spams else "–"
        rows.append(
            [
                name,
                row["median_s"],
                f"{min(row['times_s']):.3f}–{max(row['times_s']):.3f}",
                ratio,
                f"{row['max_rel_gap']:.1e}",
                f"{row['mean_rel_gap']:.1e}",
            ]
        )
    header = ["solver", "median (s)", "range (s)", "vs SPAMS", "max gap/P", "mean gap/P"]
    return [
        "",
        f"## Exact Lasso, {exact['threads']} threads each, float64",
        "",
        f"The solvers take turns for {exact['repeats']} rounds after a warm-up, each with "
        f"{exact['threads']} threads (torch, SPAMS numThreads, scikit-learn n_jobs); medians. "
        f"Load average before/after: {exact['load_before']} / {exact['load_after']} on a CPU "
        "shared with other jobs, so compare the ratios, not the absolute times. "
        "gap/P is each signal's duality gap over its objective (Lasso.duality_gap).",
        "",
        *table(header, rows),
        *splits_section(exact.get("splits"), exact["threads"]),
    ]
