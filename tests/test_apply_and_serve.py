"""``sparseland-apply`` on files and ``mlflow models serve`` on a logged model, both against a
dictionary trained for denoising (it denoises images and codes patches)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import free_port
from hydra import compose, initialize_config_dir
from model_runs import CPU, only_run, tracking_uri
from PIL import Image

import sparseland
from sparseland import metrics, registry
from sparseland.app import config_dir
from sparseland.apply_cli import main as apply_main
from sparseland.runner import run

SIGMA = 15.0  # grey levels; the clean image lies in [0.3, 0.7], so noisy pixels are never clipped


@pytest.fixture(scope="module")
def denoiser(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from sparseland.plugins.datasets.images import load_image

    folder = tmp_path_factory.mktemp("denoiser")
    crop = load_image("camera")[220:260, 220:260].numpy()
    clean_file = folder / "clean.png"
    Image.fromarray((255.0 * (0.3 + 0.4 * crop)).round().astype(np.uint8)).save(clean_file)
    outputs = folder / "outputs"
    overrides = [
        "dataset=images",
        f"dataset.image={clean_file}",
        f"dataset.sigma={SIGMA}",
        "dataset.n_train=256",
        "dataset.n_val=32",
        "dataset.batch_size=128",
        "task=denoise",
        "preprocess=dc",
        "pursuit=omp",
        "pursuit.k=4",
        "learner=ksvd",
        "model.n_atoms=32",
        "logger.experiment=apply",
        f"paths.outputs={outputs}",
        *CPU,
    ]
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    reported = run(cfg, run_dir=folder / "run")
    dm = registry.build_from_config("dataset", cfg.dataset, None)
    dm.setup("fit")
    return {
        "uri": f"runs:/{only_run(outputs, 'apply')}",
        "tracking": tracking_uri(outputs),
        "outputs": outputs,
        "reported": reported,
        "noisy": dm.noisy_image,
        "clean": dm.clean_image,
        "folder": folder,
    }


def _apply(denoiser: dict[str, Any], *args: str) -> None:
    apply_main([denoiser["uri"], *args, "--tracking-uri", denoiser["tracking"]])


def _png16(path: Path, image: np.ndarray) -> None:
    Image.fromarray((image * 65535.0 + 0.5).astype(np.uint16)).save(path)


def test_apply_denoises_a_png_to_the_psnr_the_run_reported(
    denoiser: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    noisy = denoiser["noisy"].numpy()
    assert noisy.min() > 0.0 and noisy.max() < 1.0  # the PNG holds the run's noisy image
    _png16(tmp_path / "noisy.png", noisy)
    _apply(denoiser, str(tmp_path / "noisy.png"), str(tmp_path / "out.png"))
    printed = capsys.readouterr().out
    assert "denoised the 40x40 grey image" in printed and " s\n" in printed
    out = np.asarray(Image.open(tmp_path / "out.png"), dtype=np.float64) / 65535.0
    psnr = metrics.psnr(denoiser["clean"], torch.from_numpy(out).float())
    assert psnr == pytest.approx(denoiser["reported"]["test/psnr"], abs=0.01)
    assert psnr > denoiser["reported"]["test/psnr_noisy"] + 1.0


def test_apply_denoises_a_colour_image_channel_by_channel(
    denoiser: dict[str, Any], tmp_path: Path
) -> None:
    grey = (denoiser["noisy"].numpy() * 255.0).round().astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray(np.stack([grey, grey, grey], axis=-1)).save(tmp_path / "colour.png")
    _apply(denoiser, str(tmp_path / "grey.png"))
    _apply(denoiser, str(tmp_path / "colour.png"))
    grey_out = np.asarray(Image.open(tmp_path / "grey_denoised.png"))
    colour_out = np.asarray(Image.open(tmp_path / "colour_denoised.png"))
    assert colour_out.shape == (40, 40, 3)
    for channel in range(3):
        assert np.array_equal(colour_out[..., channel], grey_out)


def test_apply_codes_a_npy_of_patches(
    denoiser: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sparseland.plugins.preprocess.patches import extract_patches

    patches = extract_patches(denoiser["noisy"], 8, 4).numpy()
    np.save(tmp_path / "patches.npy", patches)
    _apply(denoiser, str(tmp_path / "patches.npy"), str(tmp_path / "codes.npy"))
    assert f"coded {len(patches)} signals" in capsys.readouterr().out
    codes = np.load(tmp_path / "codes.npy")
    model = sparseland.load(denoiser["uri"], tracking_uri=denoiser["tracking"])
    assert codes.shape == (len(patches), 32)
    assert ((codes != 0).sum(axis=1) <= 4).all()  # pursuit.k = 4
    x = model.preprocessor.transform(torch.from_numpy(patches))  # DC removed
    residual = x.numpy() - codes @ model.module.D.numpy().T
    assert np.linalg.norm(residual) < np.linalg.norm(x.numpy())


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.png", None, "no such file"),
        ("text.png", b"not an image", "not an image PIL can read"),
        ("signals.npy", np.zeros((5, 7), dtype=np.float32), r"shape \(5, 7\).*\(n, 64\)"),
        ("notes.txt", b"hello", "not an image"),
    ],
)
def test_apply_refuses_bad_input_with_a_clear_message(
    denoiser: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: Any,
    message: str,
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        np.save(path, content)
    with pytest.raises(SystemExit) as exit_info:
        _apply(denoiser, str(path))
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def _post(port: int, payload: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["predictions"]


@pytest.mark.slow
def test_mlflow_serves_the_model_as_a_coder_and_a_denoiser(denoiser: dict[str, Any]) -> None:
    from sparseland.plugins.preprocess.patches import extract_patches

    port = free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    path = f"{mlflow_cli.parent}{os.pathsep}{os.environ.get('PATH', '')}"  # uvicorn, as activated
    env = {**os.environ, "MLFLOW_TRACKING_URI": denoiser["tracking"], "PATH": path}
    command = [str(mlflow_cli), "models", "serve", "-m", f"{denoiser['uri']}/model"]
    options = ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    server = subprocess.Popen(
        [*command, *options],
        cwd=denoiser["folder"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 240
        while True:
            assert server.poll() is None, server.stderr.read().decode()[-3000:]  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                assert time.time() < deadline, "the model server did not start in 240 s"
                time.sleep(0.5)
        model = sparseland.load(denoiser["uri"], tracking_uri=denoiser["tracking"])
        patches = extract_patches(denoiser["noisy"], 8, 8)[:16]  # a batch of 8×8 patches
        batch = patches.reshape(16, 8, 8).tolist()  # images in, as the signature says
        codes = _post(port, {"inputs": batch, "params": {"method": "encode"}})
        np.testing.assert_allclose(np.asarray(codes), model.encode(patches).numpy(), atol=1e-6)
        noisy = denoiser["noisy"]
        served = np.asarray(_post(port, {"inputs": noisy[None].tolist()}))[0]
        psnr = metrics.psnr(denoiser["clean"], torch.from_numpy(served).float().clamp(0, 1))
        assert psnr == pytest.approx(denoiser["reported"]["test/psnr"], abs=1e-4)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
