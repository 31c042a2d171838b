"""Contracts between plugins: declared capabilities, checked by the run's validation, and
pursuits that receive their problem."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from sparseland import build, registry
from sparseland.errors import ConfigError
from sparseland.interfaces import contracts
from sparseland.problems import L0, L0Error, Lasso, MultiLayerLasso
from sparseland.spec import validate

ROOT = Path(__file__).resolve().parents[1]


def test_denoise_refuses_a_model_that_is_not_a_denoiser(make_config: Any) -> None:
    with pytest.raises(ConfigError, match=r"task 'denoise' needs Denoiser .*model 'lista'") as info:
        validate(make_config("task=denoise", "dataset=images", "model=lista", small=False))
    # the fix lists the models that provide the capability
    assert "dictionary" in str(info.value) and "psd" not in str(info.value)


def test_recover_refuses_data_without_a_ground_truth_dictionary(make_config: Any) -> None:
    with pytest.raises(ConfigError, match=r"needs GroundTruthDictionary .*dataset 'patches'"):
        validate(make_config("task=recover", "preprocess=none"))


def test_denoising_with_a_dictionary_needs_a_scale_preserving_preprocessor(
    make_config: Any,
) -> None:
    with pytest.raises(ConfigError, match=r"ScalePreserving .*preprocess 'zca'.*dc, none"):
        validate(make_config("task=denoise", "dataset=images", "preprocess=zca", small=False))
    validate(make_config("task=denoise", "dataset=images", "preprocess=dc", small=False))


def test_declared_hook_capabilities_are_implemented() -> None:
    """A model that declares a hook capability has the hook (checked on the class)."""
    hooks = {contracts.Denoiser: "denoise_image", contracts.Classifier: "classify"}
    for name in registry.names("model"):
        cls: Any = registry.get("model", name).cls
        for capability, hook in hooks.items():
            if capability in cls.capabilities(None):
                assert callable(inspect.getattr_static(cls, hook, None)), (name, hook)


def test_protocols_recognise_instances() -> None:
    class Image:
        noisy_image = torch.zeros(2, 2)
        clean_image = torch.zeros(2, 2)
        sigma = 0.1

    assert isinstance(Image(), contracts.NoisyImage)
    assert not isinstance(object(), contracts.NoisyImage)


def test_problem_overrides_are_refused_with_the_pursuit_spelling() -> None:
    from sparseland.app import preflight

    with pytest.raises(ConfigError, match=r"problem\.lam: .*write pursuit\.lam="):
        preflight(["problem.lam=0.2"])


def test_pursuits_expose_the_problem_built_from_their_config() -> None:
    assert build("pursuit", "fista", lam=0.2, positive=True).problem == Lasso(0.2, True)
    assert build("pursuit", "omp", k=3).problem == L0(3)
    assert build("pursuit", "omp", k=3, eps=0.5).problem == L0Error(0.5)
    assert build("pursuit", "ml_ista", lam=[0.1, 0.2]).problem == MultiLayerLasso((0.1, 0.2))
    hard = build("pursuit", "threshold", mode="hard", k=2).problem
    assert hard == L0(2)


def test_with_problem_solves_another_problem_and_refuses_a_foreign_one() -> None:
    gen = torch.Generator().manual_seed(0)
    d = torch.randn(8, 12, generator=gen, dtype=torch.float64)
    d /= d.norm(dim=0)
    x = torch.randn(4, 8, generator=gen, dtype=torch.float64)
    fista = build("pursuit", "fista", lam=0.5, max_iter=3000, tol=1e-12)
    other = fista.with_problem(Lasso(0.05))
    assert fista.problem == Lasso(0.5)  # the original is untouched
    # the new problem's λ is the one solved: its duality gap vanishes, the old one's does not
    codes = other(x, d)
    assert float(Lasso(0.05).duality_gap(x, d_op(d), codes).max()) < 1e-8
    assert float(Lasso(0.5).duality_gap(x, d_op(d), codes).max()) > 1e-3
    with pytest.raises(ConfigError, match=r"cannot solve a L0 problem.*Lasso"):
        fista.with_problem(L0(2))


def d_op(d: torch.Tensor) -> Any:
    from sparseland.operators import MatrixOperator

    return MatrixOperator(d)


@pytest.mark.parametrize(
    ("pattern", "what"),
    [
        (r"def soft_threshold\(", "the soft threshold"),
        (r"def \w*batch_omp\w*\(|def omp\(", "OMP"),
        (r"1\.0 \+ 4\.0 \* t \* t|1 \+ 4 \* t", "the FISTA momentum rule"),
        (r"def \w*lasso_objective\w*\(", "a Lasso objective outside the problem"),
    ],
)
def test_the_maths_is_written_once(pattern: str, what: str) -> None:
    files = [*ROOT.glob("framework/**/*.py"), *ROOT.glob("plugins/**/*.py")]
    files += [*ROOT.glob("benchmarks/*.py")]
    found = [str(p.relative_to(ROOT)) for p in files if re.search(pattern, p.read_text())]
    assert len(found) <= 1, f"{what} is written in {found}"
