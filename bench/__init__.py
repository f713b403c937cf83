"""The API benchmark (``bench/run.sh``): never imported by Heptora unless its switches are set.

* ``bench.processes``: the trivial ``bench-noop`` process, loaded via ``HEPTORA_PROCESS_MODULES``.
* ``bench.urls`` / ``bench.views``: benchmark-only endpoints, mounted at ``/bench/`` only when
  ``HEPTORA_BENCH_ENDPOINTS=1`` (see heptora/urls.py) and kept out of the OpenAPI schema.
* ``bench.api_bench``: the driver that starts the production stack, loads it and writes docs/benchmarks.md.
"""
