"""Model ``mlcsc``: a multi-layer convolutional dictionary learned through an unfolded pursuit.

Supervised (Sulam, Aberdam, Beck and Elad 2019, §6): a linear classifier on the deepest code
γ_L, trained end to end by back-propagation through the unfolded pursuit (``pursuit=ml_ista``,
``ml_fista``, ``layered_bp``; ``layered_thresholding`` is the CNN with the very same
parameters: the fair baseline). The thresholds are learned per channel, λ_i = −bias_i.
``steps=lipschitz`` (default): every unfolding takes the pursuit's 1/‖D‖² steps s_i, computed
from the current weights (warm-started power iterations, no extra parameters), with τ_i = s_i λ_i,
and the head reads γ_L / s_L. Then ML-ISTA's first iteration is exactly the CNN for any weights,
and more unfoldings converge to the ML-BP solution instead of diverging. ``steps=unit``: steps 1,
absorbed in the weights, as in the paper's code; stable only while every ‖D_i‖² < 2, which
unit-norm atoms already break (‖D₁‖² ≈ 40 for 32 3×3 atoms): each unfolding then amplifies
the codes, and 20 unfoldings left the digits preset at chance.
Unsupervised: the dictionaries minimise the ML-BP objective of the codes the pursuit returns
(thresholds from ``pursuit.lam``), with every atom kept in the unit ball.
Per-layer sparsity (fraction of zeros, as in Papyan et al. 2017) is logged for val and test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sparseland import PluginConfig, option, register_model
from sparseland.errors import ConfigError, check
from sparseland.interfaces import ModelContext, SparselandModule, contracts
from sparseland.plugins.convolutional.layered import MultiLayerPursuit
from sparseland.plugins.convolutional.multilayer import MultiLayerConvDictionary


@dataclass
class MLCSCConfig(PluginConfig):
    channels: list[int] = option([32, 64, 128], "filters K_i of each layer")
    kernels: list[int] = option([3, 3, 4], "kernel side of each layer")
    strides: list[int] = option([1, 2, 1], "convolution stride of each layer")
    paddings: list[int] = option([1, 1, 0], "zero padding of each layer")
    supervised: bool = option(True, "train the filters through a classifier on the deepest codes")
    lr: float = option(2e-3, "Adam learning rate")
    weight_decay: float = option(0.0, "Adam weight decay")
    # "lipschitz": the pursuit's 1/‖D_i‖²-type steps from the current weights, so that every
    # unfolding is a convergent ML-ISTA step, whatever the weights grow to; "unit": s_i = 1,
    # absorbed in the weights (Sulam et al.'s networks), which diverges once ‖D_i‖² > 2
    steps: str = option(
        "lipschitz", "lipschitz: 1/‖D_i‖²-type steps from the weights; unit: s_i = 1"
    )
    power_iterations: int = option(2, "power iterations per training step for the lipschitz steps")
    n_classes: int = option(0, "classes of the classifier head (0: from the dataset)")

    def __post_init__(self) -> None:
        n = len(self.channels)
        check(n >= 1, "channels", "needs at least one layer")
        for key, values in (
            ("kernels", self.kernels),
            ("strides", self.strides),
            ("paddings", self.paddings),
        ):
            check(
                len(values) == n, key, f"has {len(values)} values for {n} layers", "one per layer"
            )
        check(all(c >= 1 for c in self.channels), "channels", f"must be >= 1, got {self.channels}")
        check(all(s >= 1 for s in self.strides), "strides", f"must be >= 1, got {self.strides}")
        check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        check(
            self.steps in ("lipschitz", "unit"),
            "steps",
            f"must be lipschitz or unit, got '{self.steps}'",
        )
        check(self.power_iterations >= 1, "power_iterations", "must be >= 1")


def as_images(x: torch.Tensor) -> torch.Tensor:
    """(n, C, H, W) from images (n, H, W) or flattened square images (n, H·W)."""
    if x.ndim == 4:
        return x
    if x.ndim == 3:
        return x[:, None]
    side = math.isqrt(x.shape[1])
    if x.ndim == 2 and side * side == x.shape[1]:
        return x.reshape(x.shape[0], 1, side, side)
    raise ConfigError(
        "dataset",
        f"model=mlcsc needs images, got a batch of shape {tuple(x.shape)}",
        "use an image dataset (digits, mnist) without flattening",
    )


@register_model("mlcsc", config=MLCSCConfig)
class MLCSCModel(SparselandModule):
    @classmethod
    def capabilities(cls, config: Any = None) -> frozenset[type]:
        supervised = config is None or config.supervised
        return frozenset({contracts.Classifier}) if supervised else frozenset()

    @staticmethod
    def check_compatible(spec: Any) -> None:
        from sparseland import registry

        pursuit = spec["pursuit"]
        ml = [
            n
            for n in registry.names("pursuit")
            if issubclass(registry.get("pursuit", n).cls, MultiLayerPursuit)
        ]
        if pursuit is None or pursuit.name not in ml:
            raise ConfigError(
                "pursuit",
                f"model=mlcsc needs a multi-layer pursuit, got "
                f"'{'none' if pursuit is None else pursuit.name}'",
                f"use one of {', '.join(ml)}",
            )

    def __init__(self, config: MLCSCConfig, context: ModelContext) -> None:
        super().__init__(config, context)
        assert isinstance(context.pursuit, MultiLayerPursuit)
        self.pursuit = context.pursuit
        self.image_shape = self._image_shape(context)
        in_channels = self.image_shape[0]
        self.weights = nn.ParameterList()
        for k, size in zip(config.channels, config.kernels):
            w = torch.randn(k, in_channels, size, size)  # seeded by the run's seed
            self.weights.append(nn.Parameter(w / w.flatten(1).norm(dim=1)[:, None, None, None]))
            in_channels = k
        self.n_layers = len(config.channels)
        self.supervised = config.supervised and context.datamodule.has_labels
        if self.supervised:
            self.biases = nn.ParameterList(nn.Parameter(torch.zeros(k)) for k in config.channels)
            n_classes = config.n_classes or int(context.datamodule.n_classes) or 10
            op = self.operator(torch.zeros(1, *self.image_shape))
            deepest = op.shapes[-1]
            if config.steps == "lipschitz":  # warm-started power iterations for ‖D_i‖²
                gen = torch.Generator().manual_seed(0)
                for i in range(1, self.n_layers + 1):
                    v, lip = op.power_iteration(i, torch.randn(1, *op.shapes[i], generator=gen), 50)
                    self.register_buffer(f"power_vector{i}", v)
                    self.register_buffer(f"power_lipschitz{i}", torch.tensor(lip))
            self.head = nn.Linear(math.prod(deepest), n_classes)
        self._stats: dict[str, list[float]] = {}

    @staticmethod
    def _image_shape(context: ModelContext) -> tuple[int, int, int]:
        """(C, H, W) of the dataset's images: its signal_shape, or its first training batch."""
        shape = tuple(context.datamodule.signal_shape)
        if len(shape) != 3:
            batch = next(iter(context.datamodule.train_dataloader()))
            shape = tuple(as_images(batch["x"]).shape[1:])
        return (int(shape[0]), int(shape[1]), int(shape[2]))

    # -- the dictionary and the pursuit
    def operator(self, x: torch.Tensor) -> MultiLayerConvDictionary:
        return MultiLayerConvDictionary(
            list(self.weights),
            list(self.config.strides),
            list(self.config.paddings),
            (int(x.shape[1]), int(x.shape[2]), int(x.shape[3])),
        )

    def representations(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = as_images(x)
        op = self.operator(x)
        if not self.supervised:
            return self.pursuit.layers(x, op)
        unit = self.config.steps == "unit" or self.pursuit.step_free
        if unit:  # learned thresholds τ = −b (Sulam et al. 2019)
            return self.pursuit.layers(x, op, [-b for b in self.biases], [1.0] * self.n_layers)
        # 1/L steps s_i from the current weights and τ_i = s_i λ_i with λ_i = −b_i: the codes
        # ψ_i = γ_i / s_i of the first iteration are the CNN's, for any weights
        steps = self.pursuit.default_steps(self._tracked_lipschitz(op))
        layers = self.pursuit.layers(x, op, [-s * b for s, b in zip(steps, self.biases)], steps)
        if not self.pursuit.scaled_codes:
            return layers
        return [g / s for g, s in zip(layers, steps)]

    def _tracked_lipschitz(self, op: MultiLayerConvDictionary) -> MultiLayerConvDictionary:
        """``op`` with ‖D_i‖² cached: while training, ``power_iterations`` more steps from the
        previous step's vectors (the weights move little per step); in eval, the last ones."""
        for i in range(1, self.n_layers + 1):
            vector = self.get_buffer(f"power_vector{i}")
            if self.training:
                v, lip = op.power_iteration(i, vector, self.config.power_iterations)
                vector.copy_(v)
                self.get_buffer(f"power_lipschitz{i}").fill_(lip)
            else:
                op.set_layer_lipschitz(i, float(self.get_buffer(f"power_lipschitz{i}")))
        return op

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.representations(x)[-1]

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.operator(torch.zeros(1, *self.image_shape)).forward(codes)

    def objective(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        x = as_images(x)
        return self.pursuit.problem.objective(x, self.operator(x), codes)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(x).flatten(1))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted labels (the classify task's hook)."""
        return self.logits(x).argmax(dim=1)

    def atoms(self) -> torch.Tensor | None:
        w = self.weights[0].detach()
        return w.reshape(-1, *w.shape[2:]) if w.shape[1] == 1 else None

    # -- training
    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            self.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay
        )

    def _loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = as_images(batch["x"])
        layers = self.representations(x)
        if self.supervised:
            return F.cross_entropy(self.head(layers[-1].flatten(1)), batch["y"]), layers
        return self.objective(x, layers[-1]).mean(), layers

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, _ = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if not self.supervised:  # the unit-ball constraint on every atom
            with torch.no_grad():
                for w in self.weights:
                    w.div_(w.flatten(1).norm(dim=1).clamp_min(1.0)[:, None, None, None])

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, layers = self._loss(batch)
        self._accumulate("val", loss, layers, batch)

    def _accumulate(
        self,
        split: str,
        loss: torch.Tensor,
        layers: list[torch.Tensor],
        batch: dict[str, torch.Tensor],
    ) -> None:
        n = float(layers[-1].shape[0])
        values = {"loss": float(loss) * n, "n": n}
        for i, g in enumerate(layers, start=1):
            values[f"layer{i}_sparsity"] = float((g == 0).double().mean()) * n
        if self.supervised:
            predicted = self.head(layers[-1].flatten(1)).argmax(dim=1)
            values["accuracy"] = float((predicted == batch["y"]).sum())
        for key, value in values.items():
            self._stats.setdefault(f"{split}/{key}", []).append(value)

    def _summary(self, split: str) -> dict[str, float]:
        n = sum(self._stats.pop(f"{split}/n", [0.0])) or 1.0
        out = {}
        for key in [k for k in self._stats if k.startswith(split + "/")]:
            out[key] = sum(self._stats.pop(key)) / n
        return out

    def on_validation_epoch_end(self) -> None:
        summary = self._summary("val")
        if summary:
            self.log_dict(summary, prog_bar=False)

    @torch.no_grad()
    def layer_metrics(self, loader: Any, split: str = "test") -> dict[str, float]:
        """Loss, per-layer sparsity and (supervised) accuracy of a whole split."""
        for batch in loader:
            batch = {k: v.to(self.device) for k, v in batch.items() if torch.is_tensor(v)}
            loss, layers = self._loss(batch)
            self._accumulate(split, loss, layers, batch)
        return self._summary(split)

    def on_fit_end(self) -> None:
        """Per-layer sparsity of the test split, logged as test/layer{i}_sparsity."""
        dm = self.context.datamodule
        if dm is None or self.logger is None or not self.trainer.is_global_zero:
            return
        try:
            dm.setup("test")
            loader = dm.test_dataloader()
        except Exception:  # a datamodule without a test split
            return
        was_training = self.training
        self.eval()
        metrics = self.layer_metrics(loader, "test")
        self.train(was_training)
        self.logger.log_metrics(metrics, step=int(self.global_step))
