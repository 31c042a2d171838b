"""Quality targets of the neural methods (issue 6), measured on this machine's CPU.

    python benchmarks/neural.py lista psd digits denoise [--cnn-minutes 8 --dae-minutes 3]

* lista: LISTA (T = 10) on held-out natural patches, Lasso objective against ISTA/FISTA.
* lista_bound: conjugate gradients told the optimum's support, a reference for what 10 layers
  (10 Gram products) can reach.
* psd: PSD's encoder on held-out patches: closeness to the pursuit's codes, and its speed
  against FISTA run until it reaches the encoder's objective.
* digits: PSD codes → linear classifier on digits, against the same classifier on pixels
  (through the real harness: Hydra config → Lightning → MLflow).
* denoise: camera() at σ = 25, DnCNN and DAE trained only on other bundled images within a
  CPU-time budget (learning rate decayed along a cosine over it; `--no-anneal`: constant),
  PSNR with and without the test-time self-ensemble.

Results are merged into benchmarks/results/neural.json and rendered to neural.md.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from harness import median_time
from neural_common import LAM, RESULTS, CpuBudget, objective, patches, pursuit_objective, trainer
from neural_lista import LISTA_VARIANTS, bench_lista, bench_lista_bound
from neural_report import render

from sparseland import build
from sparseland.interfaces import ModelContext
from sparseland.registry import get, load_plugins, make_config


def bench_psd(steps: int) -> dict[str, Any]:
    dm = patches()
    x = dm.splits["test"].x
    pursuit = build("pursuit", "fista", lam=LAM, max_iter=100, tol=1e-5, compute_gap=False)
    config = make_config("model", "psd", n_atoms=128, encoder="shrink", alpha=1.0, lr=1e-3)
    model = get("model", "psd").cls(config, ModelContext(dm, pursuit=pursuit))
    before = float(model.code_error(x))
    start = time.perf_counter()
    trainer(max_steps=steps).fit(model, datamodule=dm)
    train_time = time.perf_counter() - start
    model.eval()
    D = model.D.detach()
    with torch.no_grad():
        codes = model.encode(x)
    target = objective(x, codes, D)
    # FISTA's iterations to reach the encoder's objective, with the same dictionary
    iters = next((k for k in range(1, 501) if pursuit_objective("fista", k, x, D) <= target), 500)
    fista = build("pursuit", "fista", lam=LAM, max_iter=iters, tol=0.0, compute_gap=False)
    fista100 = build("pursuit", "fista", lam=LAM, max_iter=100, tol=0.0, compute_gap=False)
    with torch.no_grad():
        t_encoder = median_time(lambda: model.encode(x))
        t_fista = median_time(lambda: fista(x, D))
        t_fista100 = median_time(lambda: fista100(x, D))
    n = x.shape[0]
    return {
        "data": "as lista; PSD: 128 atoms, shrinkage encoder, α = 1, D learned jointly",
        "lam": LAM,
        "train_steps": steps,
        "train_time_s": round(train_time, 1),
        "code_error_before": before,
        "code_error_after": float(model.code_error(x)),
        "encoder_objective": target,
        "fista_100_objective": pursuit_objective("fista", 100, x, D),
        "fista_iterations_to_encoder_objective": iters,
        "us_per_signal": {
            "encoder": 1e6 * t_encoder / n,
            f"fista_{iters}": 1e6 * t_fista / n,
            "fista_100": 1e6 * t_fista100 / n,
        },
        "speedup_vs_fista_same_objective": t_fista / t_encoder,
        "speedup_vs_fista_100": t_fista100 / t_encoder,
        "target_met (>= 50x at same objective)": t_fista / t_encoder >= 50,
    }


def harness_run(overrides: list[str]) -> dict[str, float]:
    from hydra import compose, initialize_config_dir

    from sparseland.app import config_dir, prepare
    from sparseland.runner import run

    prepare()
    outputs = Path(tempfile.mkdtemp(prefix="neural_bench_"))
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                *overrides,
                f"paths.outputs={outputs}",
                "trainer.enable_progress_bar=false",
                "trainer.accelerator=cpu",
            ],
        )
    return run(cfg, run_dir=outputs / "run")


def bench_digits(epochs: int) -> dict[str, Any]:
    overrides = [
        "model=psd",
        "dataset=digits",
        "dataset.flatten=true",
        "preprocess=none",
        "task=classify",
        "pursuit=fista",
        "pursuit.lam=0.1",
        "pursuit.max_iter=100",
        "pursuit.compute_gap=false",
        "model.n_atoms=256",
        "model.lr=0.003",
        "dataset.batch_size=64",
        f"trainer.max_epochs={epochs}",
        "trainer.val_check_interval=1.0",
    ]
    metrics = harness_run(overrides)
    return {
        "command": "sparseland " + " ".join(overrides),
        "accuracy_psd_codes": metrics["test/accuracy"],
        "accuracy_pixels": metrics["test/accuracy_pixels"],
        "code_l0": metrics.get("test/code_l0"),
        "train_time_s": round(metrics["train_time_s"], 1),
        "target_met (codes >= pixels)": metrics["test/accuracy"] >= metrics["test/accuracy_pixels"],
    }


def camera_psnr(model: Any) -> float:
    from sparseland.plugins.datasets.natural_images import load_image

    clean = load_image("camera")
    gen = torch.Generator().manual_seed(0)
    noisy = clean + (25.0 / 255.0) * torch.randn(clean.shape, generator=gen)
    out = model.denoise_image(noisy, 25.0 / 255.0)
    return 10 * math.log10(1.0 / float((out - clean).pow(2).mean()))


ENSEMBLE = "camera_psnr_self_ensemble (8 symmetries at test time)"


def bench_denoise(
    cnn_minutes: float,
    dae_minutes: float,
    cscnet_minutes: float,
    wall_factor: float,
    anneal: bool,
    cnn_options: dict[str, Any],
    cscnet_options: dict[str, Any],
    crop: int,
    batch: int,
) -> dict[str, Any]:
    from sparseland.plugins.datasets.natural_images import load_image

    config = make_config(
        "dataset", "image_crops", crop_size=crop, batch_size=batch, n_train=batch * 400
    )
    dm = get("dataset", "image_crops").cls(config, None)
    dm.setup("fit")
    clean = load_image("camera")
    gen = torch.Generator().manual_seed(0)
    noisy = clean + (25.0 / 255.0) * torch.randn(clean.shape, generator=gen)
    out: dict[str, Any] = {
        "data": f"random {crop}×{crop} crops (batches of {batch}) of "
        f"{', '.join(config.train_images)} (flips, rotations), "
        "fresh Gaussian noise σ = 25; tested on skimage camera() (512×512), noise seed 0",
        "noisy_psnr": 10 * math.log10(1.0 / float((noisy - clean).pow(2).mean())),
        "bm3d_reference_psnr": 29.9,
    }
    models = {
        "cnn": (
            make_config("model", "cnn", mode="denoiser", lr=1e-3, **cnn_options),
            cnn_minutes,
        ),
        "dae": (make_config("model", "dae", channels=[32, 64], lr=1e-3), dae_minutes),
        # supervised CSC (issue 5), CSCNet: 175 filters 11×11 on a grid of stride 8,
        # 12 unfoldings, untied; tested with the average over the 64 grid shifts
        "cscnet": (
            make_config(
                "model", "cscnet", lr_schedule="constant", **cscnet_options
            ),  # CpuBudget anneals
            cscnet_minutes,
        ),
    }
    for name, (mconfig, minutes) in models.items():
        if minutes <= 0:
            continue
        model = get("model", name).cls(mconfig, ModelContext(dm))
        budget = CpuBudget(minutes * 60, anneal=anneal)
        wall = time.perf_counter()
        fit = trainer(
            max_time={"seconds": int(wall_factor * minutes * 60)},
            max_epochs=10_000,
            callbacks=[budget],
        )
        fit.fit(model, datamodule=dm)
        out[name] = {
            "config": {k: v for k, v in vars(mconfig).items() if k != "name"},
            "cpu_budget_min": minutes,
            "cpu_used_min": round(budget.used / 60, 2),
            "wall_min": round((time.perf_counter() - wall) / 60, 2),
            "train_steps": int(fit.global_step),
            "lr": "cosine decay over the CPU budget" if anneal else "constant",
            "camera_psnr": camera_psnr(model),
        }
        model.config.self_ensemble = True
        out[name][ENSEMBLE] = camera_psnr(model)
    ran = [out[k] for k in models if k in out]
    out["best_psnr"] = max((r["camera_psnr"] for r in ran), default=float("nan"))
    out["best_psnr_self_ensemble"] = max((r[ENSEMBLE] for r in ran), default=float("nan"))
    budget = max((minutes for _, minutes in models.values()), default=0.0)
    out[f"target_met (>= 29.5 dB, {budget:g} CPU-min of training)"] = (
        max(out["best_psnr"], out["best_psnr_self_ensemble"]) >= 29.5
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", default=["lista", "psd", "digits", "denoise"])
    parser.add_argument("--lista-steps", type=int, default=6000)
    # target=fista runs FISTA on every batch: add it explicitly (hours at these settings)
    parser.add_argument("--lista-targets", nargs="+", default=["lasso"])
    parser.add_argument("--lista-batch", type=int, default=512)
    parser.add_argument("--lista-lr", type=float, default=1e-3)
    parser.add_argument("--lista-schedule", default="cosine", choices=["cosine", "constant"])
    parser.add_argument("--lista-no-augment", action="store_true")
    parser.add_argument("--lista-layers", type=int, default=10)
    parser.add_argument(
        "--lista-variants", nargs="+", default=list(LISTA_VARIANTS), choices=list(LISTA_VARIANTS)
    )
    parser.add_argument("--key-suffix", default="", help="store results under part + suffix")
    parser.add_argument("--psd-steps", type=int, default=1500)
    parser.add_argument("--digits-epochs", type=int, default=15)
    parser.add_argument("--cnn-minutes", type=float, default=15.0, help="CPU-time budget")
    parser.add_argument("--dae-minutes", type=float, default=5.0, help="CPU-time budget")
    parser.add_argument("--cscnet-minutes", type=float, default=15.0, help="CPU-time budget")
    parser.add_argument("--cscnet-filters", type=int, default=175)
    parser.add_argument("--cscnet-size", type=int, default=11)
    parser.add_argument("--cscnet-unfoldings", type=int, default=12)
    parser.add_argument("--cscnet-stride", type=int, default=8)
    parser.add_argument("--cscnet-lr", type=float, default=2e-3)
    parser.add_argument("--no-anneal", action="store_true", help="constant lr for cnn/dae")
    parser.add_argument("--cnn-depth", type=int, default=10)
    parser.add_argument("--cnn-width", type=int, default=32)
    parser.add_argument("--cnn-batch-norm", type=int, default=1)
    parser.add_argument("--crop", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--wall-factor", type=float, default=1.5, help="wall-clock cap = factor × CPU budget"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    L.seed_everything(0, verbose=False)
    load_plugins()
    path = RESULTS / "neural.json"
    machine = f"{platform.machine()}, CPU only, torch {torch.__version__}, shared 2-core VM"
    runs = {
        "lista": lambda: bench_lista(
            args.lista_steps,
            args.lista_targets,
            args.lista_batch,
            args.lista_lr,
            args.lista_schedule,
            not args.lista_no_augment,
            args.lista_variants,
            args.lista_layers,
        ),
        "lista_bound": bench_lista_bound,
        "psd": lambda: bench_psd(args.psd_steps),
        "digits": lambda: bench_digits(args.digits_epochs),
        "denoise": lambda: bench_denoise(
            args.cnn_minutes,
            args.dae_minutes,
            args.cscnet_minutes,
            args.wall_factor,
            not args.no_anneal,
            {
                "depth": args.cnn_depth,
                "width": args.cnn_width,
                "batch_norm": bool(args.cnn_batch_norm),
            },
            {
                "n_filters": args.cscnet_filters,
                "filter_size": args.cscnet_size,
                "unfoldings": args.cscnet_unfoldings,
                "stride": args.cscnet_stride,
                "lr": args.cscnet_lr,
            },
            args.crop,
            args.batch,
        ),
    }
    for part in args.parts:
        start = time.perf_counter()
        result = runs[part]()
        result["wall_s"] = round(time.perf_counter() - start, 1)
        result["threads"] = args.threads
        print(json.dumps({part + args.key_suffix: result}, indent=1))
        RESULTS.mkdir(exist_ok=True)
        # re-read: parts may run as separate processes side by side
        results = json.loads(path.read_text()) if path.exists() else {}
        results["machine"] = machine
        results[part + args.key_suffix] = result
        path.write_text(json.dumps(results, indent=1) + "\n")
        (RESULTS / "neural.md").write_text(render(results))


if __name__ == "__main__":
    main()
