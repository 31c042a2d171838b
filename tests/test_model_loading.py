"""Every run logs its model; ``sparseland.load`` rebuilds it from MLflow and gives back what the
trained model gave: the run's reported metrics, recomputed from the loaded model's outputs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import yaml
from conftest import SMALL, store
from hydra import compose, initialize_config_dir
from model_runs import DICTIONARY, csc_denoiser, dae_denoiser, image_file, only_run, tracking_uri

import sparseland
from sparseland import metrics, registry
from sparseland.app import config_dir
from sparseland.loading import MissingPluginError, load_bundle
from sparseland.runner import run
from sparseland.tracking.model_uri import download_model


def _datamodule(cfg):  # the run's data, drawn again from its seed
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    pre = (
        registry.build_from_config("preprocess", cfg.preprocess) if cfg.get("preprocess") else None
    )
    dm = registry.build_from_config("dataset", cfg.dataset, pre)
    dm.setup("fit")
    return dm


@pytest.fixture(scope="module")
def dictionary_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny patch-dictionary run, its model registered as ``patches``."""
    outputs = tmp_path_factory.mktemp("dictionary") / "outputs"
    overrides = [
        *SMALL,
        *DICTIONARY,
        f"paths.outputs={outputs}",
        "logger.experiment=load",
        "logger.register_model=patches",
    ]
    environment = os.environ.get("MLFLOW_TRACKING_URI")
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    reported = run(cfg, run_dir=outputs / "run")
    assert os.environ.get("MLFLOW_TRACKING_URI") == environment  # this run's store did not leak
    return {"cfg": cfg, "outputs": outputs, "reported": reported, "environment": environment}


def test_dictionary_model_loads_by_run_and_registry_uri_with_the_runs_codes(
    dictionary_run: dict[str, Any],
) -> None:
    cfg, outputs, reported = (dictionary_run[k] for k in ("cfg", "outputs", "reported"))
    run_id = only_run(outputs, "load")
    model = sparseland.load(f"runs:/{run_id}", tracking_uri=tracking_uri(outputs))
    assert {"encode", "decode"} <= set(model.methods)

    # the loaded state is the state at the end of training (the Lightning checkpoint)
    trained = torch.load(outputs / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert torch.equal(model.module.D, trained["state_dict"]["dictionary.weight"])

    # codes of the raw test signals (preprocessing applied by the model) reproduce the run's
    # test objective and PSNR, computed by the task from the codes of the trained model
    dm = _datamodule(cfg)
    objectives, raws, decoded = [], [], []
    for batch in dm.test_dataloader():
        codes = model.encode(batch["raw"])
        assert torch.equal(codes, model.module.encode(batch["x"]))
        objectives.append(model.module.objective(batch["x"], codes))
        raws.append(batch["raw"])
        decoded.append(model.decode(codes, raw=batch["raw"]))
    objective = float(torch.cat(objectives).mean())
    assert objective == pytest.approx(reported["test/objective"], rel=1e-6)
    psnr = metrics.psnr(torch.cat(raws), torch.cat(decoded).clamp(0.0, 1.0), data_range=1.0)
    assert psnr == pytest.approx(reported["test/psnr"], abs=1e-6)

    # logger.register_model registered it: the registry finds version 1 of this run
    (version,) = store(outputs).search_model_versions("name='patches'")
    assert version.run_id == run_id and int(version.version) == 1
    registered = sparseland.load("models:/patches/1", tracking_uri=tracking_uri(outputs))
    x = dm.splits["test"].raw[:8]
    assert torch.equal(registered.encode(x), model.encode(x))
    assert os.environ.get("MLFLOW_TRACKING_URI") == dictionary_run["environment"]


def test_bundle_is_tensors_and_yaml_and_a_missing_plugin_names_its_package(
    dictionary_run: dict[str, Any], tmp_path: Path
) -> None:
    outputs = dictionary_run["outputs"]
    folder = download_model(f"runs:/{only_run(outputs, 'load')}", tracking_uri(outputs))
    assert {p.suffix for p in folder.iterdir()} == {".safetensors", ".yaml"}
    edited = tmp_path / "bundle"
    shutil.copytree(folder, edited)
    description = yaml.safe_load((edited / "description.yaml").read_text())
    description["plugins"]["pursuit"] = {
        "name": "quantum_pursuit",
        "distribution": "acme-sparse",
        "version": "1.2.0",
    }
    (edited / "description.yaml").write_text(yaml.safe_dump(description))
    with pytest.raises(MissingPluginError, match=r"quantum_pursuit.*acme-sparse==1\.2\.0"):
        load_bundle(edited)


def test_csc_denoiser_loaded_by_uri_gives_the_runs_denoised_image(
    make_config, outputs: Path, tmp_path: Path
) -> None:
    cfg = make_config(*csc_denoiser(image_file(tmp_path)), "logger.experiment=csc", small=False)
    reported = run(cfg, run_dir=outputs / "run")
    model = sparseland.load(f"runs:/{only_run(outputs, 'csc')}", tracking_uri=tracking_uri(outputs))
    dm = _datamodule(cfg)
    estimate = model.denoise(dm.noisy_image).clamp(0.0, 1.0)  # at the run's noise level
    assert metrics.psnr(dm.clean_image, estimate) == pytest.approx(reported["test/psnr"], abs=1e-9)


@pytest.mark.slow
def test_dae_loads_in_a_fresh_process_with_the_run_directory_deleted(
    make_config, outputs: Path, tmp_path: Path
) -> None:
    cfg = make_config(*dae_denoiser(image_file(tmp_path)), "logger.experiment=dae", small=False)
    reported = run(cfg, run_dir=outputs / "run")
    shutil.rmtree(outputs / "run")
    dm = _datamodule(cfg)
    torch.save({"noisy": dm.noisy_image, "clean": dm.clean_image}, tmp_path / "images.pt")
    script = (
        "import sys, torch, sparseland\n"
        "from sparseland import metrics\n"
        "model = sparseland.load(sys.argv[1], tracking_uri=sys.argv[2])\n"
        "images = torch.load(sys.argv[3], weights_only=True)\n"
        "estimate = model.denoise(images['noisy']).clamp(0.0, 1.0)\n"
        "print(repr(metrics.psnr(images['clean'], estimate)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            f"runs:/{only_run(outputs, 'dae')}",
            tracking_uri(outputs),
            str(tmp_path / "images.pt"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    psnr = float(result.stdout.strip().splitlines()[-1])
    assert psnr == pytest.approx(reported["test/psnr"], abs=1e-9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_model_trained_on_cpu_loads_on_the_gpu(dictionary_run: dict[str, Any]) -> None:
    outputs = dictionary_run["outputs"]
    uri = f"runs:/{only_run(outputs, 'load')}"
    on_cpu = sparseland.load(uri, tracking_uri=tracking_uri(outputs))
    on_gpu = sparseland.load(uri, device="cuda", tracking_uri=tracking_uri(outputs))
    assert on_gpu.device.type == "cuda"
    x = torch.rand(32, 64)
    torch.testing.assert_close(on_gpu.encode(x).cpu(), on_cpu.encode(x), atol=1e-4, rtol=1e-4)
