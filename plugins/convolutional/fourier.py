"""2-D real FFTs for the convolutional operators: torch on GPUs and under autograd, else pocketfft.

On CPU, ``scipy.fft`` (pocketfft, multi-threaded with ``workers``) runs the inverse real FFT of a
stack of maps faster than ``torch.fft.irfft2`` (measured in benchmarks/convolutional.py); the
hand-over is zero-copy through NumPy. The forward transform stays with torch everywhere: on 32
maps of 256 × 256 (float32, one thread) ``torch.fft.rfft2`` took 3.0–4.8 ms against 6.3–8.5 ms
for ``scipy.fft.rfft2``.
"""

from __future__ import annotations

import torch


def _use_scipy(a: torch.Tensor) -> bool:
    return a.device.type == "cpu" and not (a.requires_grad and torch.is_grad_enabled())


def rfft2(a: torch.Tensor, s: tuple[int, int] | None = None) -> torch.Tensor:
    return torch.fft.rfft2(a, s=s)


def irfft2(a: torch.Tensor, s: tuple[int, int]) -> torch.Tensor:
    if _use_scipy(a):
        import scipy.fft

        out = scipy.fft.irfft2(a.detach().numpy(), s=s, workers=torch.get_num_threads())
        return torch.from_numpy(out)
    return torch.fft.irfft2(a, s=s)
