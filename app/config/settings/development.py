"""Local development (runserver, source bind-mounted): debug on, insecure defaults allowed."""

from .base import *  # noqa: F403
from .base import BASE_DIR, database, env

DEBUG = True
SECRET_KEY = env.str("SECRET_KEY", default="development-only-not-secret")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
DATABASE_URL = env.str("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": database(DATABASE_URL)}
