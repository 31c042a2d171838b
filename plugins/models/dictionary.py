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

from sparseland import PluginConfig, option, register_model, registry
from sparseland.distributed import reduce_statistics
from sparseland.errors import ConfigError, NonFiniteError, check
from sparseland.interfaces import ModelContext, SparselandModule, contracts
from sparseland.learner_optimizer import LearnerOptimizer
from sparseland.operators import LinearDictionary, MatrixOperator
from sparseland.plugins.models.dictionary_init import INITS, initial_dictionary
from sparseland.plugins.models.patch_denoising import denoise_with_patches
from sparseland.problems import L0


@dataclass
class DictionaryModelConfig(PluginConfig):
    n_atoms: int = option(256, "number of atoms (columns) of the dictionary")
    init: str = option("samples", "initial dictionary: samples (training signals), dct or gaussian")
    # denoise_image (task denoise): error bound ε = gain·σ·√m, weight of the noisy image
    # λ = noisy_weight/(255σ) in the average of overlapping patches (Elad and Aharon 2006)
    denoise_gain: float = option(1.15, "denoise_image: error bound ε = gain·σ·√m per patch")
    denoise_noisy_weight: float = option(
        30.0,
        "denoise_image: weight λ = noisy_weight/(255σ) of the noisy image in the patch average",
    )
    denoise_stride: int = option(1, "denoise_image: step between overlapping patches")

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
    provides = (contracts.Denoiser, contracts.WithDictionary, contracts.LearnedFromStart)

    @staticmethod
    def check_compatible(spec: Any) -> None:
        if spec["pursuit"] is None or spec["learner"] is None:
            raise ConfigError(
                "model",
                "'dictionary' needs a pursuit and a learner",
                "e.g. pursuit=fista learner=online",
            )
        model, problem = spec["model"], spec.problem
        if isinstance(problem, L0) and problem.k > model.n_atoms:
            raise ConfigError(
                "pursuit.k",
                f"{problem.k} is more than the dictionary's {model.n_atoms} atoms (model.n_atoms)",
                "lower pursuit.k or raise model.n_atoms",
            )
        dataset = spec["dataset"]
        dataset_cls: Any = None if dataset is None else registry.get("dataset", dataset.name).cls
        if dataset_cls is not None and dataset_cls.signal_kind_of(dataset) != "vector":
            raise ConfigError(
                "dataset",
                f"model=dictionary codes vectors (patches); "
                f"'{spec['dataset'].name}' gives whole images",
                f"use one of {', '.join(_VECTOR_DATASETS())} or model=csc",
            )
        pre = spec["preprocess"]
        if pre is None:
            return
        model_needs, data_needs = spec.task_needs("model"), spec.task_needs("dataset")
        if contracts.GroundTruthDictionary in data_needs:
            # the atoms are compared with the data's dictionary: the signals must stay as made
            _require_preprocessor(spec, contracts.Identity, "compares its atoms with the data's")
        if contracts.Denoiser in model_needs:
            # denoise_image bounds each patch's error by σ: the preprocessor must not rescale
            _require_preprocessor(spec, contracts.ScalePreserving, "bounds patch errors by σ")

    def __init__(self, config: DictionaryModelConfig, context: ModelContext) -> None:
        super().__init__(config, context)
        self.automatic_optimization = False
        assert context.pursuit is not None and context.learner is not None
        self.pursuit, self.learner = context.pursuit, context.learner
        dm = context.datamodule
        train = dm.splits["train"].x
        gen = torch.Generator().manual_seed(dm.seed)
        D = initial_dictionary(config.init, config.n_atoms, train, gen)
        self.dictionary = LinearDictionary(D)
        self.register_buffer("initial_dictionary", self.dictionary.weight.detach().clone())
        self._state_keys = []
        for key, value in self.learner.init_state(self.dictionary.weight.detach()).items():
            self.register_buffer(f"learner_{key}", value)
            self._state_keys.append(key)
        self._val_sum = torch.zeros(())
        self._val_n = 0
        self._epoch_stats: dict[str, torch.Tensor] | None = None
        self._start = time.perf_counter()

    def configure_optimizers(self) -> LearnerOptimizer:
        return LearnerOptimizer(self.dictionary.weight, self.learner, self._learner_state)

    def _learner_state(self) -> dict[str, torch.Tensor]:
        return {k: self.get_buffer(f"learner_{k}") for k in self._state_keys}

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
        """The objective of the pursuit's problem (the Lasso's, or ½‖x − D h‖² for L0...)."""
        D = self.D if D is None else D
        values: torch.Tensor = self.pursuit.problem.objective(x, MatrixOperator(D), codes)
        return values

    def patch_side(self) -> int:
        """The side p of the datamodule's square p × p patches (its PatchGeometry)."""
        dm = self.context.datamodule
        shape = dm.patch_shape if isinstance(dm, contracts.PatchGeometry) else None
        if shape is None or shape[0] != shape[1]:
            raise ConfigError("dataset", "denoise_image needs square patches (patch_shape)")
        return int(shape[0])

    @torch.no_grad()
    def denoise_image(self, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
        """The task ``denoise`` hook: code every overlapping patch within ε(σ), average them."""
        c = self.config
        return denoise_with_patches(
            noisy.to(self.device),
            sigma,
            self.D,
            self.patch_side(),
            self.context.datamodule.preprocessor,
            gain=c.denoise_gain,
            noisy_weight=c.denoise_noisy_weight,
            stride=c.denoise_stride,
        )

    def atoms(self) -> torch.Tensor | None:
        dm = self.context.datamodule
        if not isinstance(dm, contracts.PatchGeometry) or dm.patch_shape is None:
            return None
        return self.D.T.reshape(-1, *dm.patch_shape)

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
        if self.learner.accumulate_epoch:  # batch learners: one step per epoch
            self._epoch_stats = self.learner.merge_statistics(self._epoch_stats, stats)
            if not self._last_batch(batch_idx):
                self._log_step(objective)
                return
            stats, self._epoch_stats = self._epoch_stats, None
        optimizer = self.optimizers()
        assert not isinstance(optimizer, list)
        reduced = reduce_statistics(stats, self.trainer)
        optimizer.step(closure=lambda: reduced)  # the closure hands the learner its statistics
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
    classes: dict[str, Any] = {n: registry.get("dataset", n).cls for n in registry.names("dataset")}
    return [n for n, cls in classes.items() if cls.signal_kind == "vector"]


def _require_preprocessor(spec: Any, capability: type, why: str) -> None:
    """Refuse the run's preprocessor unless it provides ``capability`` (model dictionary)."""
    contracts.require(
        (capability,),
        spec.capabilities("preprocess"),
        f"model=dictionary {why} and so",
        f"preprocess '{spec['preprocess'].name}'",
        "preprocess",
        [n for n in registry.names("preprocess") if spec.provides("preprocess", n, (capability,))],
    )
