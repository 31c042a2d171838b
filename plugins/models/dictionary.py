"""Model ``dictionary``: a patch dictionary learned by alternating pursuit and a learner step.

Each training step: codes = pursuit(x, D); statistics of (x, codes) are all-reduced over
processes; the learner updates D. No back-propagation: Lightning manual optimisation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from framework import PluginConfig, register_model
from framework.distributed import reduce_statistics
from framework.errors import ConfigError, NonFiniteError, check
from framework.interfaces import ModelContext, SparselandModule
from framework.learner_optimizer import LearnerOptimizer
from framework.operators import LinearDictionary
from plugins.models.dictionary_init import INITS, initial_dictionary


@dataclass
class DictionaryModelConfig(PluginConfig):
    n_atoms: int = 256
    init: str = "samples"

    def __post_init__(self) -> None:
        check(self.n_atoms >= 1, "n_atoms", f"must be >= 1, got {self.n_atoms}")
        check(self.init in INITS, "init", f"'{self.init}' is not an initialisation",
              f"choose one of {', '.join(INITS)}")


@register_model("dictionary", config=DictionaryModelConfig)
class DictionaryModel(SparselandModule):
    @staticmethod
    def check_compatible(spec: Any) -> None:
        if spec["pursuit"] is None or spec["learner"] is None:
            raise ConfigError("model", "'dictionary' needs a pursuit and a learner",
                              "e.g. pursuit=fista learner=online")
        if spec["dataset"] is not None and spec["dataset"].name not in _VECTOR_DATASETS():
            raise ConfigError("dataset", f"model=dictionary codes vectors (patches); "
                              f"'{spec['dataset'].name}' gives whole images",
                              f"use one of {', '.join(_VECTOR_DATASETS())} or model=csc")

    def __init__(self, config: DictionaryModelConfig, context: ModelContext) -> None:
        super().__init__(config, context)
        self.automatic_optimization = False
        assert context.pursuit is not None and context.learner is not None
        self.pursuit, self.learner = context.pursuit, context.learner
        dm = context.datamodule
        train = dm.splits["train"].x  # type: ignore[attr-defined]
        gen = torch.Generator().manual_seed(int(getattr(dm.config, "seed", 0)))
        D = initial_dictionary(config.init, config.n_atoms, train, gen)
        self.dictionary = LinearDictionary(D)
        self.register_buffer("initial_dictionary", self.dictionary.weight.detach().clone())
        self._state_keys = []
        for key, value in self.learner.init_state(self.dictionary.weight.detach()).items():
            self.register_buffer(f"learner_{key}", value)
            self._state_keys.append(key)
        self.lam = float(getattr(self.pursuit.config, "lam", 0.0))
        self._val_sum = torch.zeros(())
        self._val_n = 0
        self._start = time.perf_counter()

    def configure_optimizers(self) -> LearnerOptimizer:
        return LearnerOptimizer(self.dictionary.weight, self.learner, self._learner_state)

    def _learner_state(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self, f"learner_{k}") for k in self._state_keys}

    # -- the hooks tasks use
    @property
    def D(self) -> torch.Tensor:
        return self.dictionary.weight.detach()

    def encode(self, x: torch.Tensor, D: torch.Tensor | None = None) -> torch.Tensor:
        return self.pursuit(x, self.dictionary.operator if D is None else D)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return codes @ self.D.T

    def objective(self, x: torch.Tensor, codes: torch.Tensor, D: torch.Tensor | None = None) -> torch.Tensor:
        D = self.D if D is None else D
        residual = x - codes @ D.T
        return 0.5 * residual.pow(2).sum(dim=1) + self.lam * codes.abs().sum(dim=1)

    def atoms(self) -> torch.Tensor | None:
        shape = getattr(self.context.datamodule, "patch_shape", None)
        return None if shape is None else self.D.T.reshape(-1, *shape)

    # -- training
    def on_train_start(self) -> None:
        self._start = time.perf_counter()
        if self.global_step == 0 and self.logger is not None:  # the curve starts at the initial D
            self.logger.log_metrics({"val/objective": self.heldout_objective(), "val/time_s": 0.0}, step=0)

    @torch.no_grad()
    def heldout_objective(self, D: torch.Tensor | None = None) -> float:
        D = self.D if D is None else D
        total, count = 0.0, 0
        for batch in self.trainer.datamodule.val_dataloader():
            x = batch["x"].to(self.device)
            codes = self.pursuit(x, D)
            total += float(self.objective(x, codes, D).sum())
            count += x.shape[0]
        return total / max(count, 1)

    @torch.no_grad()
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        x = batch["x"]
        D = self.dictionary.weight.data
        codes = self.pursuit(x, self.dictionary.operator)
        objective = self.objective(x, codes).mean()
        if not torch.isfinite(objective):
            raise NonFiniteError(
                f"train/objective is {float(objective)} at step {self.global_step}: the run "
                "diverged; lower the step size / learning rate or check the data for NaNs"
            )
        optimizer = self.optimizers()
        optimizer.optimizer.statistics = reduce_statistics(  # type: ignore[union-attr]
            self.learner.statistics(x, codes, D), self.trainer
        )
        optimizer.step()
        metrics = {"train/objective": objective}
        if self.pursuit.info is not None:
            metrics.update(self.pursuit.info.as_metrics())
        self.log_dict(metrics, prog_bar=False)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        x = batch["x"]
        codes = self.encode(x)
        self._val_sum = self._val_sum.to(x.device) + self.objective(x, codes).sum()
        self._val_n += x.shape[0]

    def on_validation_epoch_end(self) -> None:
        if self._val_n:
            self.log_dict({
                "val/objective": float(self._val_sum) / self._val_n,
                "val/time_s": time.perf_counter() - self._start,
            }, prog_bar=True)
        self._val_sum, self._val_n = torch.zeros(()), 0


def _VECTOR_DATASETS() -> list[str]:
    from framework import registry

    return [n for n in registry.names("dataset")
            if getattr(registry.get("dataset", n).cls, "signal_kind", "vector") == "vector"]
