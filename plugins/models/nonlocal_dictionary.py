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
    search_window: int = option(19, "block matching within ±search_window pixels")
    reference_step: int = option(2, "reference patches on a grid of this step")
    # stage 1 "threshold": simultaneous OMP picks the group's atoms within ε, then the group's
    # spectrum on those atoms (orthonormalised) × Haar along the group is hard thresholded at
    # threshold_lam σ (BM3D's first stage on learned atoms). Camera, full image, after stage 2
    # (σ = 15 / 25 / 50), with a fixed g = 0.7: 32.11 / 29.96 / 27.78 dB; "somp" (ε of the
    # noise, g = 0.9): 32.10 / 29.86 / 27.21 dB.
    first_stage: str = option(
        "threshold",
        "stage 1: threshold (hard thresholding on the group's atoms) or somp (group coding)",
    )
    # ε = (g σ)² · pixels · patches with g = group_gain · (25 / σ)^group_gain_exponent (σ in
    # grey levels): the best g falls as σ grows. Full jobs, PSNR over camera, astronaut,
    # moon, brick and coins: at σ = 15, g = 0.7 / 0.85 / 1.0 gave a mean of 34.26 / 34.52 /
    # 34.48 dB (brick 36.81 / 37.32 / 37.63, camera 32.12 / 32.17 / 31.95); at σ = 25,
    # g = 0.7 / 0.8 / 1.0 gave 32.14 / 32.22 / 32.03; at σ = 50, 1.0 lost on every image
    # (mean 28.77 against 29.21 for 0.7). 0.8 at σ = 25 with exponent 0.12 gives 0.85 at 15
    # and 0.74 at 50.
    group_gain: float = option(
        0.8,
        "stage 1: simultaneous OMP's ε = (g σ)² · pixels · patches per group, "
        "g = group_gain · (25/σ)^group_gain_exponent, σ in grey levels",
    )
    group_gain_exponent: float = option(
        0.12, "stage 1: how g grows as σ falls below 25 grey levels (0: g = group_gain)"
    )
    threshold_lam: float = option(2.7, "stage 1 threshold: keep coefficients above lam · σ")
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
    wiener_reference_step: int = option(2, "stages 2 and 3: reference patches on this grid step")
    # camera, full image, stage 2 with a flat window: +0.015 dB at σ = 50, +0.014 at 25
    kaiser_beta: float = option(
        2.0, "stage 1: Kaiser window (β) on each patch in the aggregation; 0: flat"
    )
    wiener_kaiser_beta: float = option(0.0, "stages 2 and 3: the same; 0: flat")
    wiener_threshold: float = option(
        400.0,
        "stages 2 and 3: patches within this mean squared distance per pixel (grey levels²) of "
        "the reference, a power of 2 of them (BM3D's τ_match); 0: all",
    )
    group_transform: str = option("haar", "1-D transform along the group: haar or dct")
    # The best factor differs between images (σ = 15: camera 0.7, brick 2.0, a 0.41 dB
    # difference on brick), so each image gets the candidate with the lowest Monte-Carlo SURE
    # (plugins/models/monte_carlo_sure.py), at the cost of running the method twice.
    wiener_mu2: list[float] = option(
        [0.5, 0.7, 1.0, 1.4, 2.0],
        "Wiener factor P / (P + μ² σ²) with μ² = wiener_mu2 · σ / 25 (σ in grey levels); "
        "several values: the one with the lowest Monte-Carlo SURE on each image, one: as is",
    )
    # moon at σ = 15, true errors 9.94 / 9.70 / 9.63 / 9.68 / 9.83 grey levels² for the five
    # factors: SURE 9.91 / 9.73 / 9.69 / 9.76 / 9.90 with ε = 0.03σ, 12.2 / 11.6 / 10.9 / 10.3 /
    # 9.6 with 0.1σ, 24 / 21 / 18 / 16 / 14 with 0.3σ (block matching and thresholds react
    # to a large perturbation as they do not to a small one)
    sure_probe: float = option(0.03, "Monte-Carlo SURE: the perturbation's size ε, in units of σ")

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
        check(
            self.first_stage in ("threshold", "somp"),
            "first_stage",
            f"'{self.first_stage}' is not a first stage",
            "choose threshold or somp",
        )
        check(
            self.group_transform in ("haar", "dct"),
            "group_transform",
            f"'{self.group_transform}' is not a transform",
            "choose haar or dct",
        )
        check(self.threshold_lam >= 0, "threshold_lam", f"must be >= 0, got {self.threshold_lam}")
        check(
            len(self.wiener_mu2) >= 1 and min(self.wiener_mu2) >= 0,
            "wiener_mu2",
            f"must be a non-empty list of values >= 0, got {self.wiener_mu2}",
            "e.g. model.wiener_mu2=[0.7]",
        )
        check(self.sure_probe > 0, "sure_probe", f"must be > 0, got {self.sure_probe}")
        check(
            self.wiener_threshold >= 0,
            "wiener_threshold",
            f"must be >= 0, got {self.wiener_threshold}",
        )
        check(
            self.wiener_kaiser_beta >= 0,
            "wiener_kaiser_beta",
            f"must be >= 0, got {self.wiener_kaiser_beta}",
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
    denoise_report: dict[str, float]  # ReportsDenoising: set by each denoise_image

    @torch.no_grad()
    def denoise_image(self, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
        """The task ``denoise`` hook: group, code, filter and aggregate the patches."""
        side = self.patch_side()
        c: NonlocalDictionaryConfig = self.config
        settings = NonlocalSettings(
            group_size=c.group_size,
            window=c.search_window,
            step=c.reference_step,
            gain=c.group_gain * (25.0 / (255.0 * sigma)) ** c.group_gain_exponent
            if sigma > 0
            else c.group_gain,
            gain2=c.pilot_gain,
            wiener_basis=c.wiener_basis,
            noisy_weight=c.denoise_noisy_weight,
            stages=c.stages,
            wiener_group_size=c.wiener_group_size,
            wiener_window=c.wiener_search_window,
            wiener_step=c.wiener_reference_step,
            kaiser_beta=c.kaiser_beta,
            wiener_kaiser_beta=c.wiener_kaiser_beta,
            wiener_threshold=c.wiener_threshold,
            group_transform=c.group_transform,
            first_stage=c.first_stage,
            threshold_lam=c.threshold_lam,
            wiener_mu2=tuple(c.wiener_mu2),
            sure_probe=c.sure_probe,
        )
        # what the call chose from the data (task denoise logs it as tags)
        self.denoise_report = {}
        return denoise_nonlocal(
            noisy.to(self.device), sigma, self.D, side, settings, self.denoise_report
        )
