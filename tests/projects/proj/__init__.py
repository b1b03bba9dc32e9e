"""A Celery project in the shape the Celery docs recommend (used by tests/celery/)."""

from .celery import app as celery_app

__all__ = ("celery_app",)
