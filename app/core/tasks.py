from celery import shared_task


@shared_task
def word_count(text: str) -> int:
    return len(text.split())
