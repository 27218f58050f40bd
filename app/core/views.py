import json
from typing import Any

from celery.result import AsyncResult
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from core.models import Message
from core.tasks import word_count as word_count_task

MAX_TEXT = Message._meta.get_field("text").max_length


def _text_from(request: HttpRequest) -> str | None:
    """The non-empty "text" string of a JSON body, or None."""
    try:
        body: Any = json.loads(request.body)
    except ValueError:
        return None
    text = body.get("text") if isinstance(body, dict) else None
    return text if isinstance(text, str) and text.strip() else None


def _bad_request(limit: int | None = None) -> JsonResponse:
    detail = 'expected JSON {"text": "..."}'
    if limit:
        detail += f" of at most {limit} characters"
    return JsonResponse({"error": detail}, status=400)


@require_safe  # GET and HEAD: monitors and link checkers send HEAD
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "core/index.html", {"messages": Message.objects.all()[:50]})


@require_safe
def version(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"version": settings.APP_VERSION})


# A JSON API without cookie-based authentication: there is no session for CSRF to protect.
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def messages(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        text = _text_from(request)
        if text is None or len(text) > MAX_TEXT:
            return _bad_request(MAX_TEXT)
        message = Message.objects.create(text=text)
        return JsonResponse({"id": message.id, "text": message.text}, status=201)
    items = [{"id": m.id, "text": m.text} for m in Message.objects.all()]
    return JsonResponse({"count": len(items), "messages": items})


@csrf_exempt
@require_POST
def word_count(request: HttpRequest) -> JsonResponse:
    text = _text_from(request)
    if text is None:
        return _bad_request()
    result = word_count_task.delay(text)
    return JsonResponse({"task_id": result.id}, status=202)


@require_safe
def task_result(request: HttpRequest, task_id: str) -> JsonResponse:
    result = AsyncResult(task_id)
    return JsonResponse(
        {"state": result.state, "result": result.result if result.successful() else None}
    )
