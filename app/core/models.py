from django.db import models


class Message(models.Model):
    text = models.CharField(max_length=500)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-id",)

    def __str__(self) -> str:
        return self.text


class TaskAttempt(models.Model):
    """One row per start of `core.tasks.idempotent_demo`: a re-delivered task shows up here
    twice while its effect (DemoEffect) exists once."""

    key = models.CharField(max_length=100, db_index=True)
    hostname = models.CharField(max_length=255)  # the worker's container
    pid = models.IntegerField()  # the prefork child that ran it
    started = models.DateTimeField(auto_now_add=True)


class DemoEffect(models.Model):
    """The effect of `core.tasks.idempotent_demo`, keyed by the caller's key: written with an
    upsert, so a task that runs again rewrites the same row."""

    key = models.CharField(max_length=100, unique=True)
    seconds = models.FloatField()
    written = models.DateTimeField()
