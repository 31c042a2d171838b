"""Task ``reconstruct``: code held-out signals and measure fit, sparsity and the dictionary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from sparseland import PluginConfig, metrics, register_task
from sparseland.interfaces import SparselandDataModule, SparselandModule, Task
from sparseland.interfaces.contracts import LearnedFromStart, WithDictionary
from sparseland.metrics import MetricSpec


@dataclass
class ReconstructConfig(PluginConfig):
    pass


@register_task("reconstruct", config=ReconstructConfig)
class Reconstruct(Task):
    """Error and PSNR in pixels (after the inverse preprocessing, clipped to [0, 1]), so they
    rank methods alike whatever the preprocessor; ``test/mse_preprocessed`` is the error the
    model minimises, in the preprocessed space (not comparable across preprocessors)."""

    declares = (
        MetricSpec("test/objective", "preprocessed", "lower"),
        MetricSpec("test/objective_initial", "preprocessed", "lower"),
        MetricSpec("test/mse", "pixels", "lower"),
        MetricSpec("test/psnr", "pixels", "higher", "dB"),
        MetricSpec("test/mse_preprocessed", "preprocessed", "lower"),
        MetricSpec("test/l0", "codes", "neither", "non-zeros"),
        MetricSpec("test/l1", "codes", "neither"),
        MetricSpec("test/kurtosis", "codes", "neither"),
        MetricSpec("test/coherence", "dictionary", "lower"),
    )

    def run(
        self, model: SparselandModule, datamodule: SparselandDataModule, tracker: Any
    ) -> dict[str, float]:
        xs, raws, codes_all, objectives, initial = [], [], [], [], []
        start = model if isinstance(model, LearnedFromStart) else None
        for batch in datamodule.test_dataloader():
            x = batch["x"].to(model.device)
            codes = model.encode(x)
            xs.append(x)
            raws.append(batch["raw"].to(model.device))
            codes_all.append(codes)
            objectives.append(model.objective(x, codes))
            if start is not None:  # the same pursuit with the dictionary training started from
                D0 = start.initial_dictionary
                initial.append(start.objective(x, start.encode(x, D0), D0))
        x, raw, codes = torch.cat(xs), torch.cat(raws), torch.cat(codes_all)
        x_hat = model.decode(codes)
        pre = datamodule.preprocessor
        pixels_hat = pre.inverse_transform(x_hat, raw=raw) if pre is not None else x_hat
        pixels_hat = pixels_hat.clamp(0.0, 1.0)
        out = {
            "test/objective": float(torch.cat(objectives).mean()),
            "test/mse": metrics.mse(raw, pixels_hat),
            "test/psnr": metrics.psnr(raw, pixels_hat, data_range=1.0),
            "test/mse_preprocessed": metrics.mse(x, x_hat),
            "test/l0": metrics.mean_l0(codes),
            "test/l1": metrics.mean_l1(codes),
            "test/kurtosis": metrics.kurtosis(codes),
        }
        if initial:
            out["test/objective_initial"] = float(torch.cat(initial).mean())
        if isinstance(model, WithDictionary):
            out["test/coherence"] = metrics.mutual_coherence(model.D)
        return out
