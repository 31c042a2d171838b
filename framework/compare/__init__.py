"""Compare runs recorded in MLflow: a table over seeds and a few plots (``sparseland-compare``)."""

from sparseland.compare.query import CompareError, RunRecord, runs_of_experiment, runs_of_parent
from sparseland.compare.table import Comparison, Group, compare, to_markdown, write_csv

__all__ = [
    "CompareError",
    "Comparison",
    "Group",
    "RunRecord",
    "compare",
    "runs_of_experiment",
    "runs_of_parent",
    "to_markdown",
    "write_csv",
]
