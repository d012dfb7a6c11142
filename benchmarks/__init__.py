"""Side-by-side timing of deepgrad against PyTorch on the same workloads.

Run ``python -m benchmarks`` (CPU suite) or ``python -m benchmarks --device cuda`` (GPU suite);
``python -m benchmarks --help`` lists the options. Each library runs in its own long-lived
worker process (their thread pools interfere inside one process); a controller rotates short
timed blocks between the two and reports the median of the per-rotation time ratios.

This package imports neither deepgrad nor torch at import time: the workers import exactly
one of them, after their thread settings are in the environment.
"""

from .registry import Workload, get_workload, list_workloads, workload

__all__ = ["Workload", "get_workload", "list_workloads", "workload"]
