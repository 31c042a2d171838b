"""An example Sparseland plugin package: the pursuit ``example_iht`` and a preset.

Sparseland imports every module of this package (entry point group ``sparseland.plugins``),
so registering a plugin is just defining it in a module with a ``@register_*`` decorator.
"""

__version__ = "0.1.0"
