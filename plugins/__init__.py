"""The methods Sparseland ships, registered exactly like a third-party package's plugins.

Every module below is imported on its own by the registry (entry point ``sparseland =
sparseland.plugins`` in our pyproject) when the plugins load. ``PLUGIN_INDEX`` names the module
that registers each built-in, so ``build("pursuit", "fista")`` imports that module alone, and
the registry knows the reserved built-in names before any module is imported. A new method is a
new file plus its line here (tests/test_registry_lazy.py fails, naming the line, when the two
disagree).
"""

# kind -> plugin name -> module under sparseland.plugins
PLUGIN_INDEX: dict[str, dict[str, str]] = {
    "pursuit": {
        "active_set": "pursuit.active_set",
        "admm": "pursuit.admm",
        "cod": "pursuit.cod",
        "csc_admm": "convolutional.csc_admm",
        "fista": "pursuit.fista",
        "group_lasso": "pursuit.group_lasso",
        "ista": "pursuit.ista",
        "layered_bp": "convolutional.layered",
        "layered_thresholding": "convolutional.layered",
        "ml_fista": "convolutional.ml_ista",
        "ml_ista": "convolutional.ml_ista",
        "omp": "pursuit.omp",
        "somp": "pursuit.somp",
        "threshold": "pursuit.threshold",
    },
    "learner": {
        "bcd": "dictionary.bcd",
        "gradient": "dictionary.gradient",
        "ksvd": "dictionary.ksvd",
        "mod": "dictionary.mod",
        "online": "dictionary.online",
    },
    "preprocess": {
        "dc": "preprocess.dc",
        "gaussian_noise": "preprocess.corruption",
        "knockout": "preprocess.corruption",
        "none": "preprocess.none",
        "patches": "preprocess.patches",
        "poisson_noise": "preprocess.corruption",
        "zca": "preprocess.zca",
    },
    "dataset": {
        "digits": "datasets.digits",
        "image_crops": "datasets.image_crops",
        "images": "datasets.images",
        "mnist": "datasets.mnist",
        "patches": "datasets.patches",
        "streaming_patches": "datasets.streaming_patches",
        "synthetic": "datasets.synthetic",
    },
    "task": {
        "classify": "tasks.classify",
        "denoise": "tasks.denoise",
        "reconstruct": "tasks.reconstruct",
        "recover": "tasks.recover",
    },
    "model": {
        "bm3d": "models.bm3d_reference",
        "cnn": "neural.cnn",
        "csc": "convolutional.csc_model",
        "cscnet": "convolutional.csc_net",
        "dae": "neural.dae",
        "dictionary": "models.dictionary",
        "lista": "neural.lista",
        "mlcsc": "convolutional.mlcsc_model",
        "nonlocal_dictionary": "models.nonlocal_dictionary",
        "pca": "models.reference",
        "pixels": "models.reference",
        "psd": "neural.psd",
        "tv": "models.reference",
        "wavelet": "models.reference",
    },
}
