from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django_prometheus.exports import ExportToDjangoView

from core.health import status


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
