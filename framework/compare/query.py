"""Read the runs to compare from MLflow: an experiment's runs, or a sweep parent's children."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from sparseland.errors import SparselandError

PARENT_TAG = "mlflow.parentRunId"
KIND_TAG = "sparseland.kind"
# Runs that hold no result of their own: sweep parents, earlier comparisons, and a sweep's
# record of a job it reused (listed under its sweep's parent; the experiment has the original).
BOOKKEEPING_KINDS = ("sweep", "compare", "reused")
REUSED_FROM_TAG = "sparseland.reused_from"


class CompareError(SparselandError):
    """Nothing to compare, or the experiment / run asked for does not exist."""


@dataclass
class RunRecord:
    """What the comparison needs of one MLflow run."""

    run_id: str
    name: str
    status: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    start_time: int = 0

    @property
    def reused_from(self) -> str | None:
        """The run whose result this sweep job reused (same config and code), if any."""
        return self.tags.get(REUSED_FROM_TAG)

    @classmethod
    def from_run(cls, run: Run) -> RunRecord:
        return cls(
            run_id=run.info.run_id,
            name=run.info.run_name or run.info.run_id[:8],
            status=run.info.status,
            params=dict(run.data.params),
            metrics={k: float(v) for k, v in run.data.metrics.items()},
            tags=dict(run.data.tags),
            start_time=int(run.info.start_time or 0),
        )


def experiment_id(client: MlflowClient, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is None:
        names = sorted(e.name for e in client.search_experiments())
        closest = difflib.get_close_matches(name, names, n=1)
        hint = f" Did you mean '{closest[0]}'?" if closest else ""
        raise CompareError(
            f"no MLflow experiment named '{name}' in this store.{hint} "
            f"Experiments: {', '.join(names) or '(none)'}. Pass --tracking-uri if the runs "
            "were recorded elsewhere."
        )
    return str(found.experiment_id)


def _search(client: MlflowClient, experiment: str, query: str) -> list[Run]:
    runs: list[Run] = []
    token: str | None = None
    while True:
        page = client.search_runs(
            [experiment],
            filter_string=query,
            max_results=1000,
            page_token=token,
            order_by=["attributes.start_time ASC"],
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _status_filter(statuses: tuple[str, ...] | None) -> str:
    if not statuses:
        return ""
    if len(statuses) == 1:
        return f"attributes.status = '{statuses[0]}'"
    quoted = ", ".join(f"'{s}'" for s in statuses)
    return f"attributes.status IN ({quoted})"


def runs_of_experiment(
    client: MlflowClient, name: str, statuses: tuple[str, ...] | None = ("FINISHED",)
) -> list[RunRecord]:
    """Every run of experiment ``name`` that holds a result (sweep parents left out)."""
    runs = _search(client, experiment_id(client, name), _status_filter(statuses))
    return [
        RunRecord.from_run(r) for r in runs if r.data.tags.get(KIND_TAG) not in BOOKKEEPING_KINDS
    ]


def runs_of_parent(
    client: MlflowClient, parent_run_id: str, statuses: tuple[str, ...] | None = ("FINISHED",)
) -> list[RunRecord]:
    """The child runs of a sweep's parent run."""
    try:
        parent = client.get_run(parent_run_id)
    except Exception as exc:
        raise CompareError(
            f"no MLflow run '{parent_run_id}' in this store ({type(exc).__name__}). Pass the "
            "parent run id of a sweep (tag sparseland.kind=sweep) and, if the runs were "
            "recorded elsewhere, --tracking-uri."
        ) from None
    query = f"tags.`{PARENT_TAG}` = '{parent_run_id}'"
    status = _status_filter(statuses)
    if status:
        query += f" AND {status}"
    return [RunRecord.from_run(r) for r in _search(client, parent.info.experiment_id, query)]
