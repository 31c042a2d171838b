"""Model ``lista``: learned ISTA (Gregor and LeCun 2010, "Learning fast approximations of
sparse coding", Algorithm 3).

ISTA for ½‖x − D z‖² + λ‖z‖₁ from z = 0 is z ← h_θ(W_e x + S z) with W_e = Dᵀ/L,
S = I − DᵀD/L, θ = λ/L (L = ‖D‖²). LISTA unrolls T such layers (the first is h_θ(W_e x)) and
learns W_e, S and θ (one set shared by all layers when tied, one per layer otherwise), either
to match the codes of the run's pursuit (``target=fista``: ½‖z_T − z*‖², the paper's loss)
or to minimise the Lasso objective of z_T directly (``target=lasso``). Initialised at the ISTA
values, T layers compute exactly T ISTA iterations. The dictionary D stays fixed.

Variants (see :class:`UnrolledIsta`): ``coupled`` (LISTA-CP, Chen et al. 2018), ``momentum``
(learned FISTA extrapolation) and ``threshold=input_norm``. With all three the untrained
network is FISTA-T, and each layer costs what a FISTA iteration costs (D y and W r).

Training (issue 6): Adam with a cosine learning-rate decay to 0 over the run (a Lightning
``lr_scheduler`` stepped every optimiser step) and, on square patches, inputs drawn through the
8 symmetries of the square. With a constant learning rate the held-out objective plateaus; on
20000 patches the untied network (T·(k·m + k² + k) weights) overfits them without the
symmetries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sparseland import option, register_model
from sparseland.errors import ConfigError, DataNotFoundError, check
from sparseland.interfaces import ModelContext, contracts
from sparseland.interfaces.contracts import PatchGeometry
from sparseland.momentum import momentum_weights
from sparseland.operators import MatrixOperator
from sparseland.plugins.models.dictionary_init import INITS
from sparseland.plugins.neural.blocks import NeuralConfig, NeuralModule, as_rows
from sparseland.plugins.neural.sparse_coding import (
    atoms_as_images,
    check_lasso_pursuit,
    lasso_pursuit,
    start_dictionary,
)
from sparseland.problems import soft_threshold

TARGETS = ("fista", "lasso")
THRESHOLDS = ("constant", "input_norm")


@dataclass
class ListaConfig(NeuralConfig):
    """LISTA's settings.

    ``lr_schedule`` (see :class:`NeuralConfig`) defaults to ``cosine`` here: with a constant
    learning rate the held-out objective plateaus.

    ``augment``: during training, each signal that is a square patch (a dataset with a square
    ``patch_shape``) goes through one of the 8 symmetries of the square (transpose, flips),
    drawn at random: more distinct training inputs for the same Lasso problem. Other signals
    are used as they are. Validation and encoding never transform.

    ``coupled``, ``momentum``, ``threshold``: the variants of :class:`UnrolledIsta`. All three
    together gave the best held-out Lasso objective on natural patches (FISTA after 67
    iterations for T = 10, against 41 for plain LISTA: benchmarks/results/neural.md).
    """

    n_layers: int = option(10, "unrolled ISTA layers T")
    tied: bool = option(False, "share the weights of all layers")
    target: str = option(
        "fista",
        "fista: regress on the configured pursuit's codes; lasso: minimise the Lasso objective",
    )
    n_atoms: int = option(128, "atoms of the fixed dictionary")
    init: str = option("dct", "the fixed dictionary, unless dictionary names a file")
    dictionary: str = option(
        "", "a .pt / .safetensors file holding an (m, k) tensor 'dictionary' ('': use init)"
    )
    seed: int = option(0, "seed of the dictionary and weight initialisation")
    lr_schedule: str = option("cosine", "constant, or cosine: anneal lr to 0 over lr_steps")
    augment: bool = option(True, "random symmetries of square patches during training")
    coupled: bool = option(False, "LISTA-CP: z ← h_θ(z + W(x − Dz)), only W learned")
    momentum: bool = option(False, "learned FISTA extrapolation between layers")
    threshold: str = option(
        "constant", "constant, or input_norm: θ_t + γ_t‖x‖ with γ_t learned from 0"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.n_layers >= 1, "n_layers", f"must be >= 1, got {self.n_layers}")
        check(
            self.target in TARGETS,
            "target",
            f"'{self.target}' is not a target",
            f"choose one of {TARGETS}",
        )
        check(
            self.threshold in THRESHOLDS,
            "threshold",
            f"'{self.threshold}' is not a threshold rule",
            f"choose one of {THRESHOLDS}",
        )
        check(self.n_atoms >= 1, "n_atoms", f"must be >= 1, got {self.n_atoms}")
        check(
            self.init in INITS,
            "init",
            f"'{self.init}' is not an initialisation",
            f"choose one of {', '.join(INITS)}",
        )


def square_symmetries(
    x: torch.Tensor, side: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Rows of ``x`` (n, side²), each as a side × side patch sent through one of the 8
    symmetries of the square (a random transpose, then random vertical and horizontal flips)."""
    n = x.shape[0]
    p = x.reshape(n, side, side)
    for flip in (lambda t: t.transpose(1, 2), lambda t: t.flip(1), lambda t: t.flip(2)):
        mask = torch.rand(n, generator=generator, device=x.device) < 0.5
        p = torch.where(mask[:, None, None], flip(p), p)
    return p.reshape(n, side * side)


def load_dictionary(path: str) -> torch.Tensor:
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataNotFoundError(
            f"model.dictionary={path}: no such file (looked for "
            f"{file.resolve()}); save an (m, k) tensor under 'dictionary'"
        )
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(file))["dictionary"].float()
    loaded = torch.load(file, map_location="cpu", weights_only=True)
    return (loaded["dictionary"] if isinstance(loaded, dict) else loaded).float()


def fista_momenta(n_layers: int) -> torch.Tensor:
    """β_1, …, β_{T−1} of FISTA (Beck and Teboulle 2009, eq. 4.2–4.3): t_1 = 1,
    t_{j+1} = (1 + √(1 + 4t_j²))/2, β_j = (t_j − 1)/t_{j+1}; layer j + 1 extrapolates
    y = z_j + β_j (z_j − z_{j−1})."""
    return torch.tensor(momentum_weights(n_layers - 1))


class UnrolledIsta(nn.Module):
    """T layers z ← h_θ(W_e x + S z); weights start at the ISTA values of D and λ.

    ``coupled`` (LISTA-CP, Chen, Liu, Wang and Yin 2018, "Theoretical linear convergence of
    unfolded ISTA"): the layer is z ← h_θ(z + W (x − D z)), i.e. S = I − W D with only
    W (k × m) learned; every layer is driven by its residual.

    ``momentum``: layer t gets y = z + β_t (z − z_prev) in place of z, β_t learned from
    FISTA's values, so that coupled with momentum the untrained network is T iterations of
    FISTA.

    ``threshold="input_norm"``: θ_t + γ_t‖x‖₂ per unit, γ_t learned from 0: the Lasso's
    support size grows with ‖x‖/λ, and one set of thresholds must otherwise serve patches
    whose norms span two decades.

    ``forward(x, D)`` takes the fixed dictionary (the model's buffer), which the coupled
    layers use.
    """

    def __init__(
        self,
        D: torch.Tensor,
        lam: float,
        n_layers: int,
        tied: bool,
        positive: bool = False,
        coupled: bool = False,
        momentum: bool = False,
        threshold: str = "constant",
    ) -> None:
        super().__init__()
        lipschitz = MatrixOperator(D).lipschitz()  # ‖D‖², exactly as ISTA uses it
        k = D.shape[1]
        copies = 1 if tied else n_layers
        self.w_e = nn.Parameter((D.T / lipschitz).expand(copies, -1, -1).clone())
        if not coupled:
            s = torch.eye(k) - D.T @ D / lipschitz
            self.s = nn.Parameter(s.expand(copies, -1, -1).clone())
        self.theta = nn.Parameter(torch.full((copies, k), lam / lipschitz))
        if threshold == "input_norm":
            self.gamma = nn.Parameter(torch.zeros(copies, k))
        if momentum:
            self.beta = nn.Parameter(fista_momenta(n_layers))
        self.n_layers, self.tied, self.positive = n_layers, tied, positive
        self.coupled, self.momentum, self.threshold = coupled, momentum, threshold

    def shrink(self, v: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return soft_threshold(v, theta, self.positive)

    def forward(self, x: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
        scale = x.norm(dim=1, keepdim=True) if self.threshold == "input_norm" else None

        def layer(i: int, v: torch.Tensor) -> torch.Tensor:
            theta = self.theta[i] if scale is None else self.theta[i] + self.gamma[i] * scale
            return self.shrink(v, theta)

        z = layer(0, x @ self.w_e[0].T)
        z_prev = torch.zeros_like(z)
        for t in range(1, self.n_layers):
            i = 0 if self.tied else t
            y = z + self.beta[t - 1] * (z - z_prev) if self.momentum else z
            if self.coupled:
                v = y + (x - y @ D.T) @ self.w_e[i].T
            else:
                v = x @ self.w_e[i].T + y @ self.s[i].T
            z_prev, z = z, layer(i, v)
        return z


@register_model("lista", config=ListaConfig)
# the NeuralModule skeleton (capability, compatibility check, init), as in dae, psd, lista
class Lista(NeuralModule):
    provides = (contracts.WithDictionary,)
    D: torch.Tensor  # the fixed dictionary (m × k), a buffer

    @staticmethod
    def check_compatible(spec: Any) -> None:
        check_lasso_pursuit("lista", spec)

    def __init__(self, config: ListaConfig, context: ModelContext) -> None:
        super().__init__(config, context)
        self.pursuit, self.problem = lasso_pursuit(context)
        dm = context.datamodule
        if config.dictionary:
            D = load_dictionary(config.dictionary)
        else:
            D = start_dictionary(config.init, config.n_atoms, dm, config.seed)
        m = math.prod(dm.signal_shape) if dm.signal_shape else D.shape[0]
        if D.shape[0] != m:
            raise ConfigError(
                "model.dictionary",
                f"atoms of size {D.shape[0]} do not fit signals of size {m}",
                "use a dictionary learned on these signals",
            )
        self.register_buffer("D", D)
        self.network = UnrolledIsta(
            D,
            self.problem.lam,
            config.n_layers,
            config.tied,
            self.problem.positive,
            coupled=config.coupled,
            momentum=config.momentum,
            threshold=config.threshold,
        )
        shape = tuple(dm.patch_shape or ()) if isinstance(dm, PatchGeometry) else ()
        square = len(shape) == 2 and shape[0] == shape[1] and shape[0] * shape[1] == m
        self.square_side = shape[0] if square else 0

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(as_rows(x), self.D)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return codes @ self.D.T

    def objective(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return self.problem.objective(as_rows(x), MatrixOperator(self.D), codes)

    def atoms(self) -> torch.Tensor | None:
        return atoms_as_images(self.D, self.context.datamodule)

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        x = as_rows(batch["x"]).float()
        if self.training and self.config.augment and self.square_side:
            x = square_symmetries(x, self.square_side)
        z = self.encode(x)
        objective = self.objective(x, z).mean()
        if self.config.target == "lasso":
            return objective, {"objective": objective.detach()}
        with torch.no_grad():
            target = self.pursuit(x, self.D)
        loss = 0.5 * (z - target).pow(2).sum(dim=1).mean()
        code_error = (z.detach() - target).norm() / target.norm().clamp_min(1e-12)
        return loss, {"objective": objective.detach(), "code_error": code_error}
