"""Dependency checks for /health/: cheap enough to poll every few seconds, bounded by timeouts."""

from functools import cache

import redis
from django.conf import settings
from django.db import DatabaseError, connection


@cache
def _redis() -> redis.Redis:
    # One client (and connection pool) per process; timeouts keep a dead Redis from hanging probes.
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


def check_redis() -> str:
    try:
        _redis().ping()
    except redis.RedisError as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


def status() -> dict[str, str]:
    return {"database": check_database(), "redis": check_redis()}
