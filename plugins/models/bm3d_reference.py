"""Model ``bm3d``: BM3D (Dabov, Foi, Katkovnik and Egiazarian 2007) as a reference row of the
denoising tables, from the ``bm3d`` package (Mäkinen, Azzari and Foi's reference
implementation). Optional: ``pip install "sparseland[bench]"``. Nothing is trained."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from sparseland import PluginConfig, option, register_model
from sparseland.errors import ConfigError, check
from sparseland.interfaces import ModelContext, contracts
from sparseland.plugins.models.reference import UntrainedModel

STAGES = ("all", "hard")


@dataclass
class Bm3dConfig(PluginConfig):
    stage: str = option("all", '"all": hard thresholding then Wiener; "hard": the first stage only')

    def __post_init__(self) -> None:
        check(
            self.stage in STAGES,
            "stage",
            f"'{self.stage}' is not a BM3D stage",
            f"choose one of {', '.join(STAGES)}",
        )


def load_bm3d() -> Any:
    try:
        import bm3d
    except ImportError as error:
        raise ConfigError(
            "model",
            "model=bm3d needs the bm3d package, which is not installed",
            'pip install "sparseland[bench]"',
        ) from error
    return bm3d


@register_model("bm3d", config=Bm3dConfig)
class Bm3dReference(UntrainedModel):
    provides = (contracts.Denoiser,)

    def __init__(self, config: Bm3dConfig, context: ModelContext) -> None:
        super().__init__(config, context)
        load_bm3d()  # a missing package fails the run before anything else is done

    def denoise_image(self, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
        bm3d = load_bm3d()
        stages = bm3d.BM3DStages
        stage = stages.ALL_STAGES if self.config.stage == "all" else stages.HARD_THRESHOLDING
        out = bm3d.bm3d(noisy.double().cpu().numpy(), sigma_psd=sigma, stage_arg=stage)
        return torch.from_numpy(out).to(noisy.dtype)
