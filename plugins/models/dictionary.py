"""Model ``dictionary``: a patch dictionary learned by alternating pursuit and a learner step.

Each training step: codes = pursuit(x, D); statistics of (x, codes) are all-reduced over
processes; the learner updates D. No back-propagation: Lightning manual optimisation.
Batch learners (``accumulate_epoch = True``: bcd, mod, ksvd) instead merge the statistics of
every batch of the epoch (``merge_statistics``) and step once, on the epoch's last batch, so the
codes of a whole pass share one dictionary. ``denoise_image`` (task ``denoise``) codes every
overlapping patch of an image within an error bound from σ and averages them.
Under ``trainer=ddp`` the strategy of framework/distributed.py skips the gradient
wrapper: the all-reduced statistics keep every process's dictionary identical.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from sparseland import PluginConfig, register_model, registry
from sparseland.distributed import reduce_statistics
from sparseland.errors import ConfigError, NonFiniteError, check
from sparseland.interfaces import ModelContext, SparselandModule
from sparseland.learner_optimizer import LearnerOptimizer
from sparseland.operators import LinearDictionary
from sparseland.plugins.models.dictionary_init import INITS, initial_dictionary
from sparseland.plugins.models.patch_denoising import denoise_with_patches


@dataclass
class DictionaryModelConfig(PluginConfig):
    n_atoms: int = 256
    init: str = "samples"
    # denoise_image (task denoise): error bound ε = gain·σ·√m, weight of the noisy image
    # λ = noisy_weight/(255σ) in the average of overlapping patches (Elad and Aharon 2006)
    denoise_gain: float = 1.15
    denoise_noisy_weight: float = 30.0
    denoise_stride: int = 1

    def __post_init__(self) -> None:
        check(self.n_atoms >= 1, "n_atoms", f"must be >= 1, got {self.n_atoms}")
        check(self.denoise_gain > 0, "denoise_gain", f"must be > 0, got {self.denoise_gain}")
        check(
            self.denoise_noisy_weight >= 0,
            "denoise_noisy_weight",
            f"must be >= 0, got {self.denoise_noisy_weight}",
        )
        check(
            self.denoise_stride >= 1, "denoise_stride", f"must be >= 1, got {self.denoise_stride}"
        )
        check(
            self.init in INITS,
            "init",
            f"'{self.init}' is not an initialisation",
            f"choose one of {', '.join(INITS)}",
        )


@register_model("dictionary", config=DictionaryModelConfig)
class DictionaryModel(SparselandModule):
    @staticmethod
    def check_compatible(spec: Any) -> None:
        if spec["pursuit"] is None or spec["learner"] is None:
            raise ConfigError(
                "model",
                "'dictionary' needs a pursuit and a learner",
                "e.g. pursuit=fista learner=online",
            )
        pursuit, model = spec["pursuit"], spec["model"]
        k = getattr(pursuit, "k", None)
        if isinstance(k, int) and k > model.n_atoms:
            raise ConfigError(
                "pursuit.k",
                f"{k} is more than the dictionary's {model.n_atoms} atoms (model.n_atoms)",
                "lower pursuit.k or raise model.n_atoms",
            )
        dataset = spec["dataset"]
        if dataset is not None and (
            registry.get("dataset", dataset.name).cls.signal_kind_of(dataset) != "vector"  # type: ignore[attr-defined]
        ):
            raise ConfigError(
                "dataset",
                f"model=dictionary codes vectors (patches); "
                f"'{spec['dataset'].name}' gives whole images",
                f"use one of {', '.join(_VECTOR_DATASETS())} or model=csc",
            )
        task, pre = spec["task"], spec["preprocess"]
        if task is not None and task.name == "recover" and pre is not None and pre.name != "none":
            raise ConfigError(
                "preprocess",
                f"task=recover compares the atoms with the true dictionary, which '{pre.name}' "
                "would transform",
                "use preprocess=none",
            )
        if (
            task is not None
            and task.name == "denoise"
            and pre is not None
            and pre.name not in ("none", "dc")
        ):
            raise ConfigError(
                "preprocess",
                f"task=denoise bounds each patch's error by σ, which '{pre.name}' rescales",
                "use preprocess=dc or preprocess=none",
            )

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
        self._epoch_stats: dict[str, torch.Tensor] | None = None
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

    def objective(
        self, x: torch.Tensor, codes: torch.Tensor, D: torch.Tensor | None = None
    ) -> torch.Tensor:
        D = self.D if D is None else D
        residual = x - codes @ D.T
        return 0.5 * residual.pow(2).sum(dim=1) + self.lam * codes.abs().sum(dim=1)

    @torch.no_grad()
    def denoise_image(self, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
        """The task ``denoise`` hook: code every overlapping patch within ε(σ), average them."""
        shape = getattr(self.context.datamodule, "patch_shape", None)
        if shape is None or shape[0] != shape[1]:
            raise ConfigError("dataset", "denoise_image needs square patches (patch_shape)")
        c = self.config
        return denoise_with_patches(
            noisy.to(self.device),
            sigma,
            self.D,
            shape[0],
            self.context.datamodule.preprocessor,
            gain=c.denoise_gain,
            noisy_weight=c.denoise_noisy_weight,
            stride=c.denoise_stride,
        )

    def atoms(self) -> torch.Tensor | None:
        shape = getattr(self.context.datamodule, "patch_shape", None)
        return None if shape is None else self.D.T.reshape(-1, *shape)

    # -- training
    def on_train_start(self) -> None:
        self._start = time.perf_counter()
        if self.global_step == 0 and self.logger is not None:  # the curve starts at the initial D
            self.logger.log_metrics(
                {"val/objective": self.heldout_objective(), "val/time_s": 0.0}, step=0
            )

    @torch.no_grad()
    def heldout_objective(self, D: torch.Tensor | None = None) -> float:
        D = self.D if D is None else D
        total, count = 0.0, 0
        for batch in self.context.datamodule.val_dataloader():
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
        stats = self.learner.statistics(x, codes, D)
        if getattr(self.learner, "accumulate_epoch", False):  # batch learners: one step per epoch
            self._epoch_stats = self.learner.merge_statistics(self._epoch_stats, stats)  # type: ignore[attr-defined]
            if not self._last_batch(batch_idx):
                self._log_step(objective)
                return
            stats, self._epoch_stats = self._epoch_stats, None
        optimizer = self.optimizers()
        assert not isinstance(optimizer, list)
        optimizer.optimizer.statistics = reduce_statistics(stats, self.trainer)  # type: ignore[attr-defined]
        optimizer.step()
        self._log_step(objective)

    def _last_batch(self, batch_idx: int) -> bool:
        trainer = self.trainer
        return bool(trainer.is_last_batch) or batch_idx + 1 >= trainer.num_training_batches

    def on_train_epoch_start(self) -> None:
        self._epoch_stats = None  # statistics of an interrupted epoch are not reused

    def _log_step(self, objective: torch.Tensor) -> None:
        metrics: dict[str, float | torch.Tensor] = {"train/objective": objective}
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
            self.log_dict(
                {
                    "val/objective": float(self._val_sum) / self._val_n,
                    "val/time_s": time.perf_counter() - self._start,
                },
                prog_bar=True,
            )
        self._val_sum, self._val_n = torch.zeros(()), 0


def _VECTOR_DATASETS() -> list[str]:
    return [
        n
        for n in registry.names("dataset")
        if getattr(registry.get("dataset", n).cls, "signal_kind", "vector") == "vector"
    ]
