"""Model ``nonlocal_dictionary``: a patch dictionary learned like ``dictionary`` (e.g. K-SVD on
the noisy image's own patches) that denoises with groups of similar patches
(plugins/models/nonlocal_denoising.py): simultaneous sparse coding of each group, then a
collaborative Wiener stage on groups matched on the first estimate."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparseland import option, register_model
from sparseland.errors import check
from sparseland.plugins.models.dictionary import DictionaryModel, DictionaryModelConfig
from sparseland.plugins.models.nonlocal_denoising import NonlocalSettings, denoise_nonlocal


@dataclass
class NonlocalDictionaryConfig(DictionaryModelConfig):
    denoise_noisy_weight: float = option(
        0.0,
        "weight of the noisy image in the aggregation (the groups' weights are on another "
        "scale than the dictionary model's)",
    )
    group_size: int = option(16, "patches per group")
    search_window: int = option(10, "block matching within ±search_window pixels")
    reference_step: int = option(3, "reference patches on a grid of this step")
    # stage 1: a group's ε = (group_gain σ)² · pixels · patches (camera σ = 25, full image:
    # 0.9 → 29.71 dB after stage 2, 1.0 → 29.67, 0.8 → 28.66)
    group_gain: float = option(0.9, "stage 1: a group's ε = (group_gain σ)² · pixels · patches")
    # stage 2 basis: "dct", the complete 2-D DCT; "atoms", the atoms simultaneous OMP picks
    # for the first estimate's group within ε = (pilot_gain σ)² · pixels · patches (camera
    # σ = 25: 29.67 dB with "atoms" in 285 s, 29.67 with "dct" in 25 s)
    wiener_basis: str = option("dct", "stage 2 basis: dct (the complete 2-D DCT) or atoms")
    pilot_gain: float = option(
        0.1,
        "stage 2 with atoms: the first estimate's groups are coded within "
        "(pilot_gain σ)² · pixels · patches",
    )
    stages: int = option(
        2,
        "1: group coding only; 2: + collaborative Wiener on the first estimate; "
        "3: + the Wiener stage again on the second estimate",
    )
    # stages 2 and 3 match blocks as BM3D's Wiener stage (Dabov et al. 2007)
    wiener_group_size: int = option(32, "stages 2 and 3: patches per group")
    wiener_search_window: int = option(19, "stages 2 and 3: block matching within ±pixels")
    wiener_reference_step: int = option(3, "stages 2 and 3: reference patches on this grid step")
    kaiser_beta: float = option(2.0, "Kaiser window (β) on each patch in the aggregation; 0: flat")

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.group_size >= 1, "group_size", f"must be >= 1, got {self.group_size}")
        check(self.search_window >= 0, "search_window", f"must be >= 0, got {self.search_window}")
        check(
            self.reference_step >= 1, "reference_step", f"must be >= 1, got {self.reference_step}"
        )
        check(self.group_gain > 0, "group_gain", f"must be > 0, got {self.group_gain}")
        check(self.pilot_gain >= 0, "pilot_gain", f"must be >= 0, got {self.pilot_gain}")
        check(self.stages in (1, 2, 3), "stages", f"must be 1, 2 or 3, got {self.stages}")
        for name in ("wiener_group_size", "wiener_reference_step"):
            check(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        check(
            self.wiener_search_window >= 0,
            "wiener_search_window",
            f"must be >= 0, got {self.wiener_search_window}",
        )
        check(self.kaiser_beta >= 0, "kaiser_beta", f"must be >= 0, got {self.kaiser_beta}")
        check(
            self.wiener_basis in ("dct", "atoms"),
            "wiener_basis",
            f"'{self.wiener_basis}' is not a basis",
            "choose dct or atoms",
        )


@register_model("nonlocal_dictionary", config=NonlocalDictionaryConfig)
class NonlocalDictionaryModel(DictionaryModel):
    @torch.no_grad()
    def denoise_image(self, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
        """The task ``denoise`` hook: group, code, filter and aggregate the patches."""
        side = self.patch_side()
        c: NonlocalDictionaryConfig = self.config
        settings = NonlocalSettings(
            group_size=c.group_size,
            window=c.search_window,
            step=c.reference_step,
            gain=c.group_gain,
            gain2=c.pilot_gain,
            wiener_basis=c.wiener_basis,
            noisy_weight=c.denoise_noisy_weight,
            stages=c.stages,
            wiener_group_size=c.wiener_group_size,
            wiener_window=c.wiener_search_window,
            wiener_step=c.wiener_reference_step,
            kaiser_beta=c.kaiser_beta,
        )
        return denoise_nonlocal(noisy.to(self.device), sigma, self.D, side, settings)
