from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from core.health import status


class HealthCheckMiddleware:
    """Answer /health/ before anything else: container and load-balancer probes use whatever Host
    header they like and plain HTTP, so host validation and the HTTPS redirect must not apply."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path != "/health/":
            return self.get_response(request)
        checks = status()
        healthy = all(value == "ok" for value in checks.values())
        return JsonResponse(checks, status=200 if healthy else 503)
