"""A convolutional dictionary as a linear operator: x_c = Σ_k d_{k,c} * z_k.

Filters ``d`` have shape (K, C, h, w): K filters spanning the C channels of the image.
A batch of images is (n, C, H, W); its codes are K maps (n, K, H', W').

Boundaries (Wohlberg 2016, "Boundary handling for convolutional sparse representations"):
  * ``circular``: H' = H, the convolution wraps around (sporco's ConvBPDN convention, filter
    origin at the top-left corner). Diagonal in the Fourier domain, so ADMM solves exactly.
  * ``full``: H' = H + h − 1 ("valid"-style full codes): every pixel is covered by every filter
    tap and nothing wraps; x is the valid part of the linear convolution. Equal to the circular
    convolution on the code grid, cropped to its last H × W pixels (no wrapped term reaches it).

Either boundary is computed by FFT (rfft2 on the code grid, per-frequency products) or by
direct convolution (torch conv2d); ``method="auto"`` picks FFT for filters of 5 × 5 taps or
more on grids of 32 × 32 or more: measured (benchmarks/results/convolutional.md, section fft,
one CPU thread) direct wins for 3 × 3 filters, FFT from 5 × 5 up (×2 at 8 × 8, ×4 at 12 × 12).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from sparseland.errors import BackendUnavailableError, ShapeError
from sparseland.operators import LinearOperator
from sparseland.plugins.convolutional.fourier import irfft2, rfft2

BOUNDARIES = ("circular", "full")
METHODS = ("auto", "fft", "direct")


class ConvDictionary(LinearOperator):
    """x = Σ_k d_k * z_k for a batch of (multi-channel) images; torch tensors, any device."""

    def __init__(self, filters: torch.Tensor, boundary: str = "circular", method: str = "auto"):
        if filters.ndim != 4:
            raise ShapeError(
                f"filters must be (K, C, h, w), got shape {tuple(filters.shape)}; "
                "add the channel axis with filters[:, None] for grey images."
            )
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary '{boundary}' is not one of {BOUNDARIES}")
        if method not in METHODS:
            raise ValueError(f"method '{method}' is not one of {METHODS}")
        self.filters = filters
        self.boundary = boundary
        self.method = method
        self._spectra: dict[tuple[Any, ...], torch.Tensor] = {}
        self._lipschitz_cache: dict[tuple[int, int], float] = {}

    # ------------------------------------------------------------------ shapes
    @property
    # shape properties, alike in every operator (operators.py's too)
    def n_filters(self) -> int:
        return int(self.filters.shape[0])

    @property
    def channels(self) -> int:
        return int(self.filters.shape[1])

    @property
    def kernel(self) -> tuple[int, int]:
        return int(self.filters.shape[2]), int(self.filters.shape[3])

    def code_grid(self, height: int, width: int) -> tuple[int, int]:
        h, w = self.kernel
        return (height, width) if self.boundary == "circular" else (height + h - 1, width + w - 1)

    def image_grid(self, height: int, width: int) -> tuple[int, int]:
        """Image size for codes on a (height, width) grid."""
        h, w = self.kernel
        return (height, width) if self.boundary == "circular" else (height - h + 1, width - w + 1)

    def code_shape(self, signals: Any) -> tuple[int, ...]:
        if signals.ndim != 4 or signals.shape[1] != self.channels:
            raise ShapeError(
                f"images of shape {tuple(signals.shape)} do not fit a convolutional dictionary "
                f"of {self.channels}-channel filters: expected (n, {self.channels}, H, W)."
            )
        n, _, height, width = (int(s) for s in signals.shape)
        h, w = self.kernel
        if self.boundary == "circular" and (height < h or width < w):
            raise ShapeError(f"images {height}×{width} are smaller than the {h}×{w} filters")
        return (n, self.n_filters, *self.code_grid(height, width))

    def use_fft(self, grid: tuple[int, int]) -> bool:
        if self.method != "auto":
            return self.method == "fft"
        h, w = self.kernel
        return h * w >= 25 and grid[0] * grid[1] >= 32 * 32

    # ------------------------------------------------------------------ FFT path
    def spectrum(self, grid: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
        """D̂ (K, C, H', W'//2 + 1): the filters zero-padded to the code grid, rfft2."""
        key = (grid, like.dtype, like.device)
        if key not in self._spectra:
            d = self.filters.to(dtype=like.dtype, device=like.device)
            self._spectra[key] = rfft2(d, s=grid)
        return self._spectra[key]

    def synthesis_fft(self, z_hat: torch.Tensor, d_hat: torch.Tensor) -> torch.Tensor:
        """X̂_c = Σ_k D̂_{k,c} Ẑ_k per frequency."""
        if self.channels == 1:
            return (d_hat[:, 0] * z_hat).sum(dim=1, keepdim=True)
        return torch.einsum("kcuv,nkuv->ncuv", d_hat, z_hat)

    def analysis_fft(self, x_hat: torch.Tensor, d_hat: torch.Tensor) -> torch.Tensor:
        """Ẑ_k = Σ_c conj(D̂_{k,c}) X̂_c per frequency."""
        if self.channels == 1:
            return d_hat[:, 0].conj() * x_hat
        return torch.einsum("kcuv,ncuv->nkuv", d_hat.conj(), x_hat)

    def _crop(self, full: torch.Tensor) -> torch.Tensor:
        if self.boundary == "circular":
            return full
        h, w = self.kernel
        return full[..., h - 1 :, w - 1 :]

    def _embed(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Adjoint of the crop: zero-pad x into the code grid at offset (h − 1, w − 1)."""
        if self.boundary == "circular":
            return x
        h, w = self.kernel
        return F.pad(x, (w - 1, 0, h - 1, 0))

    # ------------------------------------------------------------------ operator
    def forward(self, codes: Any) -> Any:
        grid = (int(codes.shape[-2]), int(codes.shape[-1]))
        if self.use_fft(grid):
            d_hat = self.spectrum(grid, codes)
            full = irfft2(self.synthesis_fft(rfft2(codes), d_hat), s=grid)
            return self._crop(full)
        h, w = self.kernel
        weight = self.filters.to(codes).flip(-2, -1).transpose(0, 1)  # (C, K, h, w)
        if self.boundary == "circular":  # z[(i − j) mod H]: wrap h − 1 rows on top and left
            codes = F.pad(codes, (w - 1, 0, h - 1, 0), mode="circular")
        return F.conv2d(codes, weight)

    def adjoint(self, signals: Any) -> Any:
        _, _, height, width = signals.shape
        grid = self.code_grid(int(height), int(width))
        if self.use_fft(grid):
            d_hat = self.spectrum(grid, signals)
            x_hat = rfft2(self._embed(signals, grid), s=grid)
            return irfft2(self.analysis_fft(x_hat, d_hat), s=grid)
        h, w = self.kernel
        weight = self.filters.to(signals)  # (K, C, h, w): correlation with d_k
        if self.boundary == "circular":  # x[(i + j) mod H]: wrap on the bottom and right
            return F.conv2d(F.pad(signals, (0, w - 1, 0, h - 1), mode="circular"), weight)
        return F.conv2d(signals, weight, padding=(h - 1, w - 1))

    def lipschitz(self, like: Any = None, n_iter: int = 100, tol: float = 1e-7) -> float:
        """‖D‖² = max over code-grid frequencies of λ_max(D̂(ω) D̂(ω)ᴴ).

        Exact for the circular boundary; for ``full`` D = crop ∘ circular on the code grid, so
        the same number bounds ‖D‖² (cropping cannot increase a norm).
        """
        grid = (64, 64) if like is None else self.code_grid(*(int(s) for s in like.shape[-2:]))
        if grid not in self._lipschitz_cache:
            d_hat = torch.fft.rfft2(self.filters.detach().to("cpu", torch.float64), s=grid)
            if self.channels == 1:
                top = d_hat[:, 0].abs().pow(2).sum(dim=0).max()
            else:  # C × C Gram per frequency, Hermitian: its largest eigenvalue
                gram = torch.einsum("kcuv,kduv->uvcd", d_hat, d_hat.conj())
                top = torch.linalg.eigvalsh(gram)[..., -1].max()
            self._lipschitz_cache[grid] = float(top) * (1.0 + 1e-6)
        return self._lipschitz_cache[grid]

    def to_backend(self, backend: str) -> ConvDictionary:
        if backend == "torch":
            return self
        raise BackendUnavailableError(
            f"the convolutional dictionary runs on torch tensors (CPU or GPU), not '{backend}'; "
            "use backend=torch (GPU runs need only a CUDA tensor)."
        )


def normalize_filters(filters: torch.Tensor) -> torch.Tensor:
    """Project every filter onto the unit ball ‖d_k‖₂ ≤ 1 (the CDL constraint set)."""
    norms = filters.flatten(1).norm(dim=1).clamp_min(1.0)
    return filters / norms[:, None, None, None]
