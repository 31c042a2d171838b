"""Where PostgreSQL is missing, the team-server tests skip and say why (and how to fix it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparseland.errors import SparselandError
from sparseland.tracking import postgres


def test_no_binaries_gives_a_reason_naming_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "SEARCH", ())
    monkeypatch.setenv("SPARSELAND_PG_BIN", str(tmp_path))  # a folder without initdb
    reason = postgres.missing_reason()
    assert reason is not None and "postgresql" in reason and "SPARSELAND_PG_BIN" in reason
    with pytest.raises(SparselandError, match="cannot start PostgreSQL"):
        postgres.PostgresCluster(tmp_path / "cluster").start()


def test_binaries_are_found_in_a_named_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for program in ("initdb", "pg_ctl"):
        (tmp_path / program).touch()
    monkeypatch.setattr(postgres, "SEARCH", ())
    monkeypatch.setenv("SPARSELAND_PG_BIN", str(tmp_path))
    assert postgres.find_binaries() == tmp_path
