"""Metrics that every relevant run logs (torch in, Python floats out)."""

from __future__ import annotations

import math

import numpy as np
import torch


def mse(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    return float(torch.mean((x - x_hat) ** 2))


def psnr(x: torch.Tensor, x_hat: torch.Tensor, data_range: float = 1.0) -> float:
    err = mse(x, x_hat)
    return float("inf") if err == 0 else 10.0 * math.log10(data_range**2 / err)


def mean_l0(codes: torch.Tensor, tol: float = 0.0) -> float:
    """Mean number of non-zeros per code (codes are rows, or (n, ...) maps)."""
    flat = codes.reshape(codes.shape[0], -1)
    return float((flat.abs() > tol).sum(dim=1).double().mean())


def mean_l1(codes: torch.Tensor) -> float:
    return float(codes.reshape(codes.shape[0], -1).abs().sum(dim=1).double().mean())


def kurtosis(codes: torch.Tensor) -> float:
    """Pearson kurtosis E[(h − μ)⁴]/σ⁴ of all code entries (3 for a Gaussian; sparse ≫ 3)."""
    h = codes.double().reshape(-1)
    centred = h - h.mean()
    var = centred.pow(2).mean()
    return float(centred.pow(4).mean() / var.pow(2)) if var > 0 else float("nan")


def mutual_coherence(dictionary: torch.Tensor) -> float:
    """max_{i≠j} |d_iᵀ d_j| / (‖d_i‖‖d_j‖) over the columns of ``dictionary`` (Elad 2010, §2.3)."""
    d = dictionary.double()
    d = d / d.norm(dim=0, keepdim=True).clamp_min(1e-12)
    gram = (d.T @ d).abs()
    gram.fill_diagonal_(0.0)
    return float(gram.max())


def ssim(image: np.ndarray, reference: np.ndarray, data_range: float) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(reference, image, data_range=data_range))
