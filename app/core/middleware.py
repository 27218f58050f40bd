import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_prometheus.exports import ExportToDjangoView

from core.health import status

logger = logging.getLogger(__name__)

# Retry-After of a 503 while the database is unreachable: about one Postgres restart.
RETRY_AFTER_SECONDS = 5


class ProbeMiddleware:
    """Answer /health/ and /metrics before anything else. Container probes and Prometheus reach
    each replica by IP or container name over the internal networks, with whatever Host header
    that gives, over plain HTTP: host validation and the HTTPS redirect must not apply. nginx
    never forwards /metrics from outside."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/metrics":
            return ExportToDjangoView(request)
        if request.path != "/health/":
            return self.get_response(request)
        checks = status()
        healthy = all(value == "ok" for value in checks.values())
        return JsonResponse(checks, status=200 if healthy else 503)


class DatabaseUnavailableMiddleware:
    """A view that fails because the database cannot be reached (Postgres restarting, a
    failover, a network cut) answers 503 with Retry-After instead of a 500: the outage is
    temporary, clients and load balancers should retry rather than report a bug. Only
    connection-level errors count (OperationalError, InterfaceError); an IntegrityError or
    a programming error stays a 500. process_exception sees what the view raises (template
    rendering included), wherever this class sits in MIDDLEWARE; the response then passes
    the other middleware as usual (security headers included)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        # One line per request, no traceback: an outage would otherwise flood the log.
        logger.warning(
            "database unavailable (%s: %s): %s %s -> 503",
            type(exception).__name__,
            str(exception).strip(),
            request.method,
            request.path,
        )
        response = HttpResponse(
            "Service temporarily unavailable, please retry shortly.\n",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
