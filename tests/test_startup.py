"""Web and worker processes load their code once, at start, and keep it out of the garbage collector's walk:
a full collection over everything Django and the apps load stopped a process for up to 160 ms, and each such
pause was the slowest start of its benchmark round (docs/benchmarks.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import gc, sys
import heptora.wsgi
print(gc.get_freeze_count(), len(gc.get_objects()), 'api_app.views' in sys.modules, 'forms_app.views' in sys.modules)
"""


def test_the_web_entry_point_loads_every_view_and_freezes_what_it_loaded(subprocess_env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=subprocess_env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    frozen, walked, api_views, form_views = done.stdout.split()
    assert (api_views, form_views) == ("True", "True")  # imported at start, not on a first request
    assert int(frozen) > 50_000
    assert int(walked) < int(frozen) / 20  # what a full collection still walks


def test_the_worker_freezes_before_its_pool_forks_and_in_each_pool_process() -> None:
    from celery.signals import worker_init, worker_process_init

    from heptora.celery import _freeze_loaded_objects

    for signal in (worker_init, worker_process_init):
        assert _freeze_loaded_objects in [receiver() for _, receiver in signal.receivers], signal.name
