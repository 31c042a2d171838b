"""Dataset ``streaming_patches``: patches drawn on the fly, as many as asked, shared by ranks."""

from __future__ import annotations

import torch

from sparseland import build, registry


def test_stream_yields_the_asked_number_of_fresh_patches() -> None:
    dm = registry.get("dataset", "streaming_patches").cls(
        registry.make_config(
            "dataset",
            "streaming_patches",
            n_train=2500,
            batch_size=1000,
            n_fit=500,
            n_val=10,
            n_test=10,
        ),
        build("preprocess", "dc"),
    )
    dm.setup()
    loader = dm.train_dataloader()
    first = list(loader)
    assert len(first) == len(dm.stream) == 3
    assert [b["x"].shape[0] for b in first] == [1000, 1000, 500]
    x = torch.cat([b["x"] for b in first])
    assert torch.allclose(x.mean(dim=1), torch.zeros(2500), atol=1e-5)  # DC removed
    raw = torch.cat([b["raw"] for b in first])
    assert torch.allclose(x, raw - raw.mean(dim=1, keepdim=True))
    second = torch.cat([b["raw"] for b in loader])  # a new epoch draws new patches
    assert not torch.equal(raw, second)
    assert dm.splits["train"].x.shape == (500, 64)  # only the fitting sample is held
