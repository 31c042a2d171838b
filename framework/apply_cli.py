"""``sparseland-apply <model uri> <input> [<output>]``: use a trained model on a file.

    sparseland-apply runs:/<id> photo.png               # a denoiser: writes photo_denoised.png
    sparseland-apply runs:/<id> signals.npy codes.npy   # a coder: (n, d) signals -> codes
    sparseland-apply models:/digits/2 images.npy        # a classifier: writes the labels

Images (PNG, JPEG, TIFF; grey, or colour one channel at a time) are denoised; ``.npy`` arrays
of signals are coded, or classified by a classifier. Prints what it did and how long it took.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sparseland.errors import SparselandError
from sparseland.image_files import IMAGE_SUFFIXES, read_image, write_image


def denoise_file(model: object, source: Path, target: Path, sigma: float | None) -> str:
    from sparseland.loading import LoadedModel

    assert isinstance(model, LoadedModel)
    image, bits = read_image(source)
    channels = [image] if image.ndim == 2 else [image[..., c] for c in range(image.shape[2])]
    sigma01 = None if sigma is None else sigma / 255.0
    out = [model.denoise(torch.from_numpy(c).float(), sigma01).cpu().numpy() for c in channels]
    result = out[0] if image.ndim == 2 else np.stack(out, axis=-1)
    write_image(target, result, bits)
    shape = "x".join(map(str, image.shape[:2]))
    kind = "grey" if image.ndim == 2 else f"{image.shape[2]}-channel"
    used = sigma if sigma is not None else 255.0 * model.default_sigma()
    return f"denoised the {shape} {kind} image {source} (sigma {used:g}/255) into {target}"


def code_file(model: object, source: Path, target: Path, method: str) -> str:
    from sparseland.loading import LoadedModel

    assert isinstance(model, LoadedModel)
    try:
        signals = np.load(source, allow_pickle=False)
    except ValueError as exc:
        raise SparselandError(f"{source} is not a numeric .npy array ({exc})") from None
    shape = tuple(model.data.get("signal_shape") or ())
    if signals.ndim < 2 or (shape and int(np.prod(signals.shape[1:])) != int(np.prod(shape))):
        want = f"(n, {', '.join(map(str, shape))})" if shape else "(n, ...)"
        raise SparselandError(
            f"{source}: signals of shape {signals.shape}; model '{model.name}' takes {want}"
        )
    if shape:
        signals = signals.reshape(signals.shape[0], *shape)
    x = torch.from_numpy(np.ascontiguousarray(signals)).float()
    result = model.predict(x) if method == "predict" else model.encode(x)
    np.save(target, result.cpu().numpy())
    what = "classified" if method == "predict" else "coded"
    return f"{what} {signals.shape[0]} signals from {source} into {target} {tuple(result.shape)}"


def default_output(source: Path, is_image: bool, method: str) -> Path:
    suffix = "denoised" if is_image else ("labels" if method == "predict" else "codes")
    return source.with_name(f"{source.stem}_{suffix}{source.suffix if is_image else '.npy'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="sparseland-apply", description="Apply a trained Sparseland model to a file."
    )
    parser.add_argument("model", help="runs:/<run id>, models:/<name>/<version> or a folder")
    parser.add_argument("input", type=Path, help="an image (png/jpg/tif) or a .npy of signals")
    parser.add_argument("output", type=Path, nargs="?", help="where to write the result")
    parser.add_argument("--sigma", type=float, help="noise level in grey levels (0-255)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tracking-uri", help="the MLflow store (default: MLFLOW_TRACKING_URI)")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one line of output
    start = time.perf_counter()
    try:
        message = apply(args)
    except SparselandError as exc:
        print(f"sparseland-apply: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"{message} in {time.perf_counter() - start:.2f} s")


def apply(args: argparse.Namespace) -> str:
    from sparseland.loading import load

    source: Path = args.input
    if not source.exists():
        raise SparselandError(f"{source}: no such file")
    is_image = source.suffix.lower() in IMAGE_SUFFIXES
    if not is_image and source.suffix.lower() != ".npy":
        raise SparselandError(f"{source}: not an image (png, jpg, tif) nor a .npy array of signals")
    model = load(args.model, device=args.device, tracking_uri=args.tracking_uri)
    method = model.default_method if model.default_method != "denoise" else "encode"
    if is_image and "denoise" not in model.methods:
        raise SparselandError(f"model '{model.name}' does not denoise images")
    target = args.output or default_output(source, is_image, method)
    if is_image:
        return denoise_file(model, source, target, args.sigma)
    return code_file(model, source, target, method)


if __name__ == "__main__":
    main()
