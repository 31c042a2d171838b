"""Bad configuration: a short message naming the key, before training and before MLflow."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import HydraException
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from omegaconf.errors import OmegaConfBaseException

from sparseland.errors import SparselandError
from sparseland.runner import run
from sparseland.spec import validate


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        (["pursuit.lam=-0.1"], "pursuit.lam"),
        (["pursuit.max_iter=0"], "pursuit.max_iter"),
        (["model.n_atoms=0"], "model.n_atoms"),
        (["model.init=magic"], "model.init"),
        (["dataset.patch_size=600"], "patch_size"),
        (["dataset.train_images=[/no/such/image.png]"], "/no/such/image.png"),
        (["dataset.test_images=[camera]", "dataset.train_images=[camera]"], "dataset.test_images"),
        (["pursuit.backend=jax"], "pursuit.backend"),
        (["preprocess.eps=-1"], "preprocess.eps"),
    ],
)
def test_bad_value_fails_before_anything_is_recorded(
    make_config, outputs: Path, overrides: list[str], names: str
) -> None:
    cfg = make_config(*overrides)
    with pytest.raises(SparselandError) as info:
        run(cfg, run_dir=outputs / "run")
    message = str(info.value)
    assert names in message
    assert len(message) < 600 and "\n" not in message.strip()
    assert not (outputs / "mlflow.db").exists()  # nothing was written to MLflow
    assert not (outputs / "run").exists()


KEYS = [
    "pursuit.lam",
    "pursuit.max_iter",
    "pursuit.tol",
    "pursuit.positive",
    "model.n_atoms",
    "model.init",
    "dataset.patch_size",
    "dataset.n_train",
    "dataset.batch_size",
    "preprocess.eps",
    "trainer.max_epochs",
    "seed",
    "pursuit.nope",
    "nope",
    "pursuit",
    "dataset",
    "model",
    "learner.forget_rho",
]
VALUES = st.one_of(
    st.integers(-5, 5000).map(str),
    st.floats(-10, 10, allow_nan=False).map(lambda v: f"{v:.3g}"),
    st.sampled_from(
        [
            "abc",
            "true",
            "null",
            "[1,2]",
            "fista",
            "ista",
            "dct",
            "''",
            "${oc.env:HOME}",
            "__import__('os').system('false')",
        ]
    ),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pairs=st.lists(st.tuples(st.sampled_from(KEYS), VALUES), min_size=1, max_size=3))
@example(pairs=[("pursuit", "0")])  # found by this test: used to be a raw Hydra traceback
@example(pairs=[("pursuit", "null")])  # idem (Hydra: "Config group override must be a string")
def test_random_overrides_compose_validly_or_explain_themselves(make_config, pairs) -> None:
    overrides = [f"{k}={v}" for k, v in dict(pairs).items()]
    try:
        cfg = make_config(*overrides)
        validate(cfg)
    except (HydraException, OmegaConfBaseException) as exc:  # what Hydra prints in one line
        text = str(exc) + str(exc.__cause__ or "")
        assert any(k.split(".")[-1] in text for k, _ in pairs) or "Could not" in text, text
    except SparselandError as exc:
        assert any(k.split(".")[0] in str(exc) for k, _ in pairs), str(exc)
