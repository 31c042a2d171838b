"""Imported last by the fork server of parallel sweep workers (see worker_start.py), once torch,
Lightning, MLflow and the plugins are in: moves every object imported so far out of the garbage
collector's reach (``gc.freeze``).

Every worker is a fork of the server. Without this, a worker's first full collection walks the
half-million objects of those imports (about 0.3 CPU-seconds on a small machine, in the first
job of every worker) and writes to the pages that hold them, which the worker then copies from
the server. Frozen objects are never collected; they are module-level objects that live as long
as the process anyway. Nothing else should import this module.
"""

from __future__ import annotations

import gc

gc.freeze()
