import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "heptora.settings")
application = get_wsgi_application()


def _load_and_freeze() -> None:
    from django.urls import get_resolver

    from heptora.startup import freeze_loaded_objects

    get_resolver().url_patterns  # noqa: B018 -- imports every view now, not on its first request
    freeze_loaded_objects()


_load_and_freeze()
