"""The development image's server: Django's runserver (autoreload, static files) with the
product's health endpoint in front of the project's app, the same probe as the runtime image.

Run as `python /opt/djangostack/devserver.py runserver [addrport]` from the project directory
(like manage.py); the autoreloader re-runs this same script, so the child serves through the
wrapper too."""

import os
import sys

import djangostack_wsgi
from django.core.management import execute_from_command_line
from django.core.management.commands import runserver

_project_handler = runserver.Command.get_handler


def _get_handler(self: runserver.Command, *args: object, **options: object) -> object:
    # staticfiles' runserver subclass calls this through super(): static files stay served.
    return djangostack_wsgi.wrap(_project_handler(self, *args, **options))


runserver.Command.get_handler = _get_handler

if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())  # the project, as `python manage.py` would have it
    execute_from_command_line(["manage.py", *sys.argv[1:]])
