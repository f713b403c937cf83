"""What a long-running web or worker process does once it has loaded its code."""

import gc


def freeze_loaded_objects() -> None:
    """Put every object alive now out of the garbage collector's reach.

    Modules, classes, settings, URL patterns, the ORM's metadata: well over 100,000 objects that live as long
    as the process. A full collection still walks them all, and here that stopped a web process for up to
    160 ms and the worker's consumer for up to 100 ms (each such pause was the slowest start of its
    benchmark round: docs/benchmarks.md). Frozen, a full collection walks only what was made since. The
    collection first frees what start-up left behind rather than keep it for good. In a process that forks
    (Celery's pool), freezing before the fork also spares the children's copy-on-write memory: a collection
    in a child no longer touches the parent's pages.
    """
    gc.collect()
    gc.freeze()
