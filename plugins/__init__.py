"""The methods Sparseland ships, registered exactly like a third-party package's plugins.

Every module below is imported on its own by the registry (entry point ``sparseland =
plugins`` in our pyproject), so a new method is a new file; nothing else needs editing.
"""
