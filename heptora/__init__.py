"""Heptora: start automated business processes from forms, the API, chat, admin, schedules and the CLI."""

from heptora.celery import app as celery_app

__all__ = ["celery_app"]
