"""LISTA benchmark parts of benchmarks/neural.py: LISTA against ISTA/FISTA, and the
support-oracle conjugate-gradient bound on what 10 layers can reach."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import torch
from harness import median_time
from neural_common import LAM, objective, patches, pursuit_objective, trainer

from sparseland import build
from sparseland.interfaces import ModelContext
from sparseland.operators import MatrixOperator, dct_dictionary
from sparseland.problems import Lasso
from sparseland.registry import get, make_config

# LISTA variants (model.lista options): Gregor and LeCun's network, and LISTA-CP with learned
# FISTA momentum and thresholds that grow with ‖x‖ (see plugins/neural/lista.py)
LISTA_VARIANTS: dict[str, dict[str, Any]] = {
    "lista": {},
    "lista_cp_momentum_norm": {"coupled": True, "momentum": True, "threshold": "input_norm"},
}


def bench_lista(
    steps: int,
    targets: list[str],
    batch_size: int,
    lr: float,
    schedule: str,
    augment: bool,
    variants: list[str],
    n_layers: int = 10,
) -> dict[str, Any]:
    dm = patches(batch_size)
    x = dm.splits["test"].x
    D = dct_dictionary(8, 128)
    out: dict[str, Any] = {
        "data": "8×8 patches, DC removed: 20000 train (5 images), 2000 held out (camera, moon)",
        "dictionary": "overcomplete DCT 64×128",
        "lam": LAM,
        "train_steps": steps,
        "training": f"untied, Adam lr {lr:g}, lr_schedule={schedule}, batch {batch_size}, "
        f"augment={augment} (8 symmetries of the square)",
        "variants": {name: LISTA_VARIANTS[name] for name in variants},
    }
    # FISTA's objective after 1, …, 100 iterations (the framework's FISTA has no per-iteration
    # hook, so one run per count: a few seconds here)
    curve = [pursuit_objective("fista", k, x, D) for k in range(1, 101)]
    out["held_out_objective"] = {
        "ista_10": pursuit_objective("ista", 10, x, D),
        "fista_10": curve[9],
        "fista_100": curve[99],
        "optimum (fista_3000)": pursuit_objective("fista", 3000, x, D),
    }
    fista_100 = build("pursuit", "fista", lam=LAM, max_iter=100, tol=0.0, compute_gap=False)
    out["us_per_signal"] = {"fista_100": 1e6 * median_time(lambda: fista_100(x, D)) / len(x)}
    pursuit = build("pursuit", "fista", lam=LAM, max_iter=200, tol=1e-6, compute_gap=False)
    for target in targets:
        for name in variants:
            config = make_config(
                "model",
                "lista",
                n_layers=n_layers,
                tied=False,
                target=target,
                init="dct",
                n_atoms=128,
                lr=lr,
                lr_schedule=schedule,
                augment=augment,
                **LISTA_VARIANTS[name],
            )
            model = get("model", "lista").cls(config, ModelContext(dm, pursuit=pursuit))
            start = time.perf_counter()
            trainer(max_steps=steps).fit(model, datamodule=dm)
            key = f"{name}_{n_layers} (target={target})"
            out[f"train_time_s {key}"] = round(time.perf_counter() - start, 1)
            model.eval()
            with torch.no_grad():
                reached = objective(x, model.encode(x), D)
                out["us_per_signal"][key] = 1e6 * median_time(partial(model.encode, x)) / len(x)
            out["held_out_objective"][key] = reached
            out[f"fista_iterations_to {key}"] = next(
                (k + 1 for k, value in enumerate(curve) if value <= reached), ">100"
            )
    best = min(v for k, v in out["held_out_objective"].items() if k.startswith("lista"))
    out[f"target_met (lista_{n_layers} <= fista_100)"] = best <= curve[99]
    return out


def oracle_support_cg(
    x: torch.Tensor,
    D: torch.Tensor,
    optimum: torch.Tensor,
    steps: int,
    preconditioner: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """Conjugate gradients on the Lasso restricted to the optimum's support and signs S, s:
    G_SS z = D_Sᵀx − λ s_S from z = 0 (batched, one Gram product per step). On that support
    the Lasso objective is this quadratic plus a constant, and CG's t-th iterate minimises it
    over the Krylov space of t Gram products: the best t-step Krylov method, told the support.
    ``preconditioner``: a fixed SPD k × k matrix P, used through its block P_SS (PCG).
    Returns the iterates after 1, …, ``steps`` steps."""
    mask = (optimum != 0).to(x.dtype)
    gram = D.T @ D

    def precondition(r: torch.Tensor) -> torch.Tensor:
        return r if preconditioner is None else mask * (r @ preconditioner)

    r = mask * (x @ D - LAM * torch.sign(optimum))
    z, u = torch.zeros_like(r), precondition(r)
    p, ru = u.clone(), (r * u).sum(1, keepdim=True)
    iterates = []
    for _ in range(steps):
        ap = mask * ((mask * p) @ gram)
        alpha = ru / (p * ap).sum(1, keepdim=True).clamp_min(1e-300)
        z, r = z + alpha * p, r - alpha * ap
        u = precondition(r)
        ru_next = (r * u).sum(1, keepdim=True)
        p, ru = u + ru_next / ru.clamp_min(1e-300) * p, ru_next
        iterates.append(z)
    return iterates


def bench_lista_bound() -> dict[str, Any]:
    """What 10 Gram products can reach on the held-out patches when the support is known."""
    x = patches().splits["test"].x.double()
    D = dct_dictionary(8, 128).double()

    problem, op = Lasso(LAM), MatrixOperator(D)

    def gaps(z: torch.Tensor) -> torch.Tensor:
        return problem.objective(x, op, z) - best

    optimum = build("pursuit", "fista", lam=LAM, max_iter=5000, tol=0.0, compute_gap=False)(x, D)
    best = problem.objective(x, op, optimum)
    fista = build("pursuit", "fista", lam=LAM, max_iter=100, tol=0.0, compute_gap=False)
    top = x.norm(dim=1).argsort()[-len(x) // 5 :]  # the 20 % of patches of largest norm
    rows = {"fista_100": gaps(fista(x, D))}
    for t, z in enumerate(oracle_support_cg(x, D, optimum, 20), start=1):
        if t in (5, 10, 15, 20):
            rows[f"oracle_support_cg_{t}"] = gaps(z)
    eye = torch.eye(D.shape[1], dtype=D.dtype)
    for delta in (0.1, 0.5, 2.0, 10.0):  # a fixed preconditioner, as a learned W could hold
        P = torch.linalg.inv(D.T @ D + delta * eye)
        rows[f"oracle_support_pcg_10 (P = (G + {delta:g} I)⁻¹)"] = gaps(
            oracle_support_cg(x, D, optimum, 10, P)[-1]
        )
    return {
        "data": "as lista; optimum: FISTA-5000 in float64",
        "mean_gap_to_optimum": {name: float(g.mean()) for name, g in rows.items()},
        "mean_gap_top_norm_quintile": {name: float(g[top].mean()) for name, g in rows.items()},
    }
