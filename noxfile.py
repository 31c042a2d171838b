"""Sessions: tests, lint (ruff + mypy), demo (the main job), bench (benchmarks vs references),
tracking-server (a team's MLflow server on PostgreSQL)."""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "venv"

# The CPU build of torch is what `pip install torch==2.13.0` finds on the project's machines; on a
# machine with a GPU the same pin resolves to the CUDA build.
TORCH = "torch==2.13.0"


def install(session: nox.Session, extras: str = "dev") -> None:
    session.install(TORCH)
    session.install("-e", f".[{extras}]")


@nox.session
def tests(session: nox.Session) -> None:
    install(session)
    session.run("python", "-m", "pytest", *session.posargs)


def typecheck_tree() -> None:
    """Lay out ``.typecheck/sparseland/`` as the installed package: links to every entry of
    framework/ and a ``plugins`` link to plugins/, so mypy sees the code under its import name."""
    root = Path(__file__).parent
    tree = root / ".typecheck" / "sparseland"
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    for entry in (root / "framework").iterdir():
        if entry.name != "__pycache__":
            (tree / entry.name).symlink_to(entry.resolve())
    (tree / "plugins").symlink_to((root / "plugins").resolve())


@nox.session
def lint(session: nox.Session) -> None:
    install(session)
    session.run("ruff", "check", "framework", "plugins", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "framework", "plugins")
    typecheck_tree()
    session.run("mypy")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job on the embedded defaults, then the list of plugins."""
    install(session)
    session.run("sparseland", "trainer.enable_progress_bar=false", *session.posargs)
    session.run("sparseland-plugins")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against scikit-learn, SPAMS and sporco; results go to benchmarks/results/."""
    install(session, "dev,bench")
    for script in (
        "benchmarks/pursuit.py",
        "benchmarks/learners.py",
        "benchmarks/convolutional.py",
        "benchmarks/neural.py",
    ):
        session.run("python", script, *session.posargs)


@nox.session(name="tracking-server")
def tracking_server(session: nox.Session) -> None:
    """MLflow on PostgreSQL on 127.0.0.1 until Ctrl-C (docs/scaling.md); state in
    outputs/team-server. Options: -- --port 5000 --pg-port 5432 --root DIR"""
    install(session, "team")
    session.run("python", "-m", "sparseland.tracking.server", *session.posargs)
