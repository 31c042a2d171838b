"""An example Sparseland plugin package: the pursuit ``example_iht``, the preprocessor
``example_standardize``, the dataset ``example_sinusoids`` and two presets (conf/experiment).

Sparseland imports every module of this package (entry point group ``sparseland.plugins``),
so registering a plugin is just defining it in a module with a ``@register_*`` decorator.
"""

__version__ = "0.1.0"
