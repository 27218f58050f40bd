import os
import socket
import time

from celery import shared_task
from django.utils import timezone

from core.models import DemoEffect, TaskAttempt


@shared_task
def word_count(text: str) -> int:
    return len(text.split())


@shared_task
def idempotent_demo(key: str, seconds: float) -> str:
    """A slow task that is safe to run more than once (docs/operations.md, "Celery: tasks
    survive worker loss"): it records each attempt, works for `seconds`, then writes its
    effect with an upsert on the caller's `key`, so a re-run after a lost worker leaves the
    same single row. Returns `key`."""
    TaskAttempt.objects.create(key=key, hostname=socket.gethostname(), pid=os.getpid())
    time.sleep(seconds)  # the work; a worker killed now has not written the effect yet
    # INSERT ... ON CONFLICT (key) DO UPDATE: one statement, no read-then-write race between
    # two deliveries of the same task.
    DemoEffect.objects.bulk_create(
        [DemoEffect(key=key, seconds=seconds, written=timezone.now())],
        update_conflicts=True,
        unique_fields=["key"],
        update_fields=["seconds", "written"],
    )
    return key
