from core import views
from django.urls import path

urlpatterns = [
    path("", views.index, name="index"),
    path("version/", views.version, name="version"),
    path("api/messages/", views.messages, name="messages"),
    path("api/tasks/word-count/", views.word_count, name="word-count"),
    path("api/tasks/<str:task_id>/", views.task_result, name="task-result"),
]
