"""Rendering of benchmarks/results/learners.md from learners.json."""

from __future__ import annotations

from typing import Any

from harness import RESULTS


def write_markdown(data: dict[str, Any]) -> None:
    lines = [
        "# Dictionary learners: measured numbers",
        "",
        "Written by `python benchmarks/learners.py <part>`; raw numbers in learners.json.",
        "The machine is a shared 2-core CPU (load average in the JSON `machine` entry), so "
        "times are indicative.",
        "",
    ]
    if "recovery" in data:
        lines += [
            "## Recovery, K-SVD protocol",
            "",
            "20×50 Gaussian dictionary, 1500 signals, 3 atoms each, 20 dB SNR (dataset "
            "`synthetic` defaults), init from 50 training signals, OMP k = 3 "
            "(the `omp` pursuit), the "
            "model's loop without Lightning (pursuit → statistics, merged over the epoch for "
            "batch learners → update). An atom counts as found when 1 − |dᵀd̂| < 0.01. "
            "Seeds 0–9 (data and initialisation); fewer where the table says so.",
            "",
            "| learner | mean | min | per seed | s/run |",
            "|---|---|---|---|---|",
        ]
        for k, v in data["recovery"].items():
            lines.append(
                f"| {k} | {100 * v['mean']:.1f} % | {100 * v['min']:.0f} % | "
                f"{', '.join(f'{100 * r:.0f}' for r in v['rates'])} | "
                f"{v['seconds_per_run']:.1f} |"
            )
        lines.append("")
    if "denoise" in data:
        lines += [
            "## Denoising skimage.data.camera() (512×512), noise seed 0",
            "",
            "8×8 patches, 256 atoms initialised with the overcomplete DCT, K-SVD "
            "(approximate, "
            "one power step per atom) on 100,000 random patches of the noisy image with "
            "error-constrained OMP (ε = 1.15·σ·8), then every overlapping patch coded within "
            "ε and averaged with the noisy image (λ = 30/σ), Elad and Aharon 2006.",
            "",
            "| σ, method | PSNR (dB) | SSIM | noisy PSNR | train s | denoise s |",
            "|---|---|---|---|---|---|",
        ]
        for k, v in data["denoise"].items():
            lines.append(
                f"| {k.replace(' | ', ', ')} | {v['test/psnr']:.2f} | {v['test/ssim']:.3f} | "
                f"{v['test/psnr_noisy']:.2f} | {v['train_s']:.0f} | "
                f"{v['test/denoise_time_s']:.0f} |"
            )
        lines.append("")
    if "streaming" in data:
        lines += [
            "## Streaming: peak memory vs patches streamed",
            "",
            "Online learner (64 atoms, FISTA 20 it.) on `streaming_patches` (batches of 1024 "
            "drawn on the fly), one epoch, each run in a fresh process; peak RSS from "
            "getrusage (includes Python, torch and Lightning, ~constant).",
            "",
            "| patches | peak RSS (MB) | would be in memory (MB) | steps | train s |",
            "|---|---|---|---|---|",
        ]
        for k, v in data["streaming"].items():
            lines.append(
                f"| {int(k):,} | {v['peak_rss_mb']:.0f} | "
                f"{v['dataset_in_memory_would_be_mb']:.0f} | {v['steps']} | "
                f"{v['train_s']:.0f} |"
            )
        lines.append("")
    if "speed" in data:
        s = data["speed"]
        lines += [
            "## Speed: held-out objective vs wall time",
            "",
            f"256 atoms, λ = 0.1, {s['n_train']} DC-removed unit-norm 8×8 training patches, "
            "2,000 held-out patches (camera, moon) coded exactly (ADMM, relative change 1e-7, "
            f"float64) for every dictionary. Initial held-out objective {s['initial']:.4f}. "
            "Points are (seconds of learning, held-out objective); every method starts from "
            "the same 256 training patches.",
            "",
            "| method | curve |",
            "|---|---|",
        ]
        for k, v in s.items():
            if isinstance(v, list):
                lines.append(f"| {k} | " + ", ".join(f"({t:.0f} s, {o:.4f})" for t, o in v) + " |")
        lines.append("")
    lines += targets(data)
    lines += [
        "## Notes",
        "",
        "- DDP: tests/test_learner_ddp.py runs `trainer=ddp` (2 CPU processes, gloo, ddp_spawn "
        "through framework/distributed.py) and `trainer=cpu` on the same synthetic "
        "data for `online` and `ksvd`; the dictionaries agree to < 1e-5 (measured ~1e-7).",
        "- Recovery: the misses are stable local minima (one learned atom mixing two true "
        "atoms, one junk atom that few signals use); more iterations change nothing. `ksvd` "
        "replaces atoms used by < 0.2 × the mean usage or with |d_iᵀd_j| > 0.99 by the second "
        "singular vector of the residual of the atom that codes worst (the direction a mixed "
        "atom misses, `replacement=split`), and when none needs replacing moves the "
        "least-energy atom there if that direction carries more energy (`swap_ratio=1`): "
        "98.1 % over seeds 0–29 (97.8, 99.2, 97.4 per ten) against 96.7 % with Rubinstein's "
        "worst-signal re-seeding and the same usage floor (95.8, 98.4, 96.0); the plain K-SVD "
        "row only replaces unused/duplicate atoms. `online` replaces atoms whose running "
        "energy is < 0.2 × the mean by the batch's worst-coded signals: 99.2 % over seeds "
        "0–19 against 97.7 % without the floor (split re-seeding: 98.8 %).",
        "- Denoising: the learned dictionary gains 0.36 dB over the DCT it starts from at σ = 25 "
        "and about 0.22 dB at σ = 15 and 50. The σ = 25 target is met by a thin margin: one run "
        "each gave 29.45 dB with 40,000 training patches, 29.51 with 100,000 (recorded) and "
        "29.49 with 250,000, so 0.05 dB is within the spread of the draw. Exact K-SVD updates "
        "(`power_iterations=3`) and no usage floor or swap gave 29.44 and 29.43 dB on 40,000. "
        "The earlier 29.35 dB was from the code before the atom replacement.",
        "- Speed: our online learner with forgetting ρ = 20 and 20 ADMM iterations per batch "
        "(plugins/pursuit/admm.py). With the earlier settings (ρ = 1, FISTA 50 iterations) it "
        "plateaued about 0.0015 higher: without forgetting, the statistics of the first batches, "
        "coded with a poor dictionary, weigh as much as the last ones.",
        "- Streaming: peak RSS is flat (≈ 443 MB, the interpreter, torch and Lightning) from "
        "10,000 to 300,000 patches while the data would need 5 to 146 MB in memory.",
        "",
    ]
    (RESULTS / "learners.md").write_text("\n".join(lines))


def targets(data: dict[str, Any]) -> list[str]:
    """The issue's quality and speed targets against what was measured."""
    out = ["## Targets (issue 4)", "", "| target | measured | met |", "|---|---|---|"]
    for key, label in (("ksvd", "ksvd"), ("online", "online")):
        hits = [v for k, v in data.get("recovery", {}).items() if k.startswith(key + " ")]
        if hits:
            mean = hits[0]["mean"]
            out.append(
                f"| recovery ≥ 96 % ({label}) | {100 * mean:.1f} % mean over "
                f"{len(hits[0]['rates'])} seeds | {'yes' if mean >= 0.96 else 'no'} |"
            )
    learned = {
        k: v
        for k, v in data.get("denoise", {}).items()
        if k.replace(" |", ",").startswith("sigma=25,") and "K-SVD" in k
    }
    for k, v in learned.items():
        met = "yes" if v["test/psnr"] >= 29.5 else "no"
        name = k.replace(" | ", ", ")
        out.append(f"| camera σ=25 ≥ 29.5 dB | {v['test/psnr']:.2f} dB ({name}) | {met} |")
    speed = data.get("speed", {})
    ours = next((v for k, v in speed.items() if k.startswith("sparseland")), None)
    spams = next(
        (v for k, v in speed.items() if k.startswith("SPAMS") and isinstance(v, list)), None
    )
    if ours and spams:
        goal = spams[-1][1]
        reached = [t for t, o in ours if o <= goal]
        text = f"{reached[0]:.0f} s" if reached else "not within the budget"
        out.append(
            f"| reach SPAMS's objective at {spams[-1][0]:.0f} s ({goal:.4f}) | ours: "
            f"{text} | {'yes' if reached and reached[0] <= spams[-1][0] / 3 else 'no'} |"
        )
    return [*out, ""]
