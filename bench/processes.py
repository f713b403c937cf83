"""A trivial process for the benchmark, so that demo steps do not dominate what the workers measure.

Loaded only when named in ``HEPTORA_PROCESS_MODULES`` (``bench/run.sh`` sets ``bench.processes``).
"""

from __future__ import annotations

from typing import Any

from executions.registry import process


@process(
    "bench-noop",
    name="Benchmark no-op",
    description="Does nothing and succeeds at once (benchmark only).",
    steps=1,
    timeout=60,
    parameters=[{"name": "n", "label": "Sequence number", "type": "number"}],
)
def bench_noop(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    return {"n": params.get("n")}
