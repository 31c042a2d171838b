"""Every iterative pursuit reports the fraction of signals that met its tolerance and the worst
remaining gap; exact pursuits report 1.0; inside a run's record the calls are noted, not warned."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from test_pursuit_lasso import LAM, SOLVERS, independent_gap, problem

from sparseland import build, convergence
from sparseland.interfaces.pursuit import ConvergenceWarning

pytestmark = pytest.mark.usefixtures("one_torch_thread")
# stopped after two steps, far from a tolerance no signal can meet that fast
STOPPED = {
    "ista": {"max_iter": 2, "tol": 1e-10},
    "fista": {"max_iter": 2, "tol": 1e-10},
    "cod": {"max_iter": 2, "tol": 1e-10},
    "admm": {"max_iter": 2, "tol": 1e-10},
    "active_set": {"max_iter": 1, "passes": 1, "warm_start_iter": 0, "rounds": 0, "tol": 1e-12},
}


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_converged_solve_reports_all_signals_and_its_duality_gap(name: str) -> None:
    x, d = problem()
    pursuit = build("pursuit", name, lam=LAM, **SOLVERS[name])
    h = pursuit(x, d)
    info = pursuit.info
    assert info is not None and info.converged_fraction == 1.0
    gap = independent_gap(x.numpy(), d.numpy(), h.numpy(), LAM, False)
    assert info.max_gap == pytest.approx(gap.max(), abs=1e-9)
    assert info.max_gap < 1e-8
    metrics = info.as_metrics()
    assert metrics["pursuit/converged_fraction"] == 1.0 and "pursuit/max_gap" in metrics


@pytest.mark.parametrize("name", sorted(STOPPED))
def test_stopped_solve_reports_unconverged_signals_and_the_gap_left(name: str) -> None:
    x, d = problem()
    pursuit = build("pursuit", name, lam=LAM, **STOPPED[name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = pursuit(x, d)
    info = pursuit.info
    assert info is not None and info.converged_fraction == 0.0  # no signal met the tolerance
    gap = independent_gap(x.numpy(), d.numpy(), h.numpy(), LAM, False)
    assert info.max_gap == pytest.approx(gap.max(), rel=1e-6)
    assert info.max_gap > 1e-3


@pytest.mark.parametrize(("name", "params"), [("omp", {"k": 3}), ("threshold", {"lam": LAM})])
def test_exact_pursuits_are_converged(name: str, params: dict) -> None:
    x, d = problem()
    pursuit = build("pursuit", name, **params)
    pursuit(x, d)
    assert pursuit.info is not None and pursuit.info.converged_fraction == 1.0


def test_a_record_notes_the_calls_instead_of_warning_per_call() -> None:
    x, d = problem()
    stopped = build("pursuit", "fista", lam=LAM, **STOPPED["fista"])
    converged = build("pursuit", "fista", lam=LAM, **SOLVERS["fista"])
    with pytest.warns(ConvergenceWarning):  # outside a run: one warning per call
        stopped(x, d)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        with convergence.record() as rec:
            stopped(x, d)
            stopped(x[:3], d)
            converged(x, d)
    assert (rec.calls, rec.unconverged_calls, rec.signals) == (3, 2, 2 * len(x) + 3)
    assert rec.converged_fraction == pytest.approx(len(x) / (2 * len(x) + 3))
    assert rec.worst_fraction == 0.0 and rec.pursuits == {"fista"}
    with pytest.warns(ConvergenceWarning):
        h = stopped(x, d)  # the same call again, to know its gap
    gap = independent_gap(x.numpy(), d.numpy(), np.asarray(h), LAM, False)
    assert rec.max_gap == pytest.approx(gap.max(), rel=1e-6)
    message = convergence.report(convergence.ConvergenceRecord(), rec)
    assert message is not None and "2 of 3 calls of fista" in message
    assert convergence.UNCONVERGED_TAG in message
    assert not convergence.recording()


def test_no_message_when_every_solve_converged() -> None:
    x, d = problem()
    with convergence.record() as rec:
        build("pursuit", "fista", lam=LAM, **SOLVERS["fista"])(x, torch.as_tensor(d))
    assert rec.calls == 1 and not rec.unconverged
    assert convergence.report(rec, rec) is None
