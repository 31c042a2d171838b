"""Errors a user can act on. The app prints their message (one screen, no traceback)."""

from __future__ import annotations


class SparselandError(Exception):
    """Base class: the message names the problem and, where one exists, the fix."""


class ConfigError(SparselandError, ValueError):
    """A config value that is out of range or a combination of plugins that cannot work."""

    def __init__(self, key: str, problem: str, fix: str = "") -> None:
        self.key, self.problem, self.fix = key, problem, fix
        message = f"{key}: {problem}"
        if fix:
            message += f" ({fix})"
        super().__init__(message)


class UnknownPluginError(SparselandError, KeyError):
    def __init__(self, kind: str, name: str, available: list[str], closest: str | None) -> None:
        self.kind, self.name, self.available = kind, name, available
        hint = f" Did you mean '{closest}'?" if closest else ""
        listing = ", ".join(available) if available else "(none registered)"
        super().__init__(f"Unknown {kind} '{name}'.{hint} Registered {kind} plugins: {listing}.")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicatePluginError(SparselandError):
    pass


class ShapeError(SparselandError, ValueError):
    pass


class NonFiniteError(SparselandError, FloatingPointError):
    """NaN or Inf in an input, or an objective that diverged."""


class BackendUnavailableError(SparselandError, RuntimeError):
    pass


class TrackingUnavailableError(SparselandError, ConnectionError):
    pass


class DataNotFoundError(SparselandError, FileNotFoundError):
    pass


def check(condition: bool, key: str, problem: str, fix: str = "") -> None:
    """Raise a ConfigError for ``key`` unless ``condition`` holds (used in ``__post_init__``)."""
    if not condition:
        raise ConfigError(key, problem, fix)
