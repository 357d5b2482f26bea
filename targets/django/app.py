"""Django as a one-file app: settings.configure(), the views, Django templates and its ORM.

The scenario database comes from FWBENCH_DB_* (SQLite through Django's sqlite3 backend, or
PostgreSQL through its postgresql backend on psycopg 3 with Django's connection pool); without
FWBENCH_DB_KIND no database is configured and only /hello/ and /json/ are served.
"""
import os
import random
from pathlib import Path

import django
from django.conf import settings

BASE_DIR = Path(__file__).resolve().parent


def _databases():
    kind = os.environ.get("FWBENCH_DB_KIND")
    if kind == "sqlite":
        # persistent connections: one per gunicorn thread, reused across requests
        return {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.environ["FWBENCH_DB_PATH"],
                "CONN_MAX_AGE": None,
            }
        }
    if kind == "postgres":
        return {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "HOST": os.environ["FWBENCH_DB_HOST"],
                "PORT": os.environ["FWBENCH_DB_PORT"],
                "NAME": os.environ["FWBENCH_DB_NAME"],
                "USER": os.environ["FWBENCH_DB_USER"],
                "PASSWORD": os.environ.get("FWBENCH_DB_PASSWORD", ""),
                # Django's psycopg pool: one connection per gunicorn thread at most
                "OPTIONS": {"pool": {"min_size": 1, "max_size": 8}},
            }
        }
    return {}


settings.configure(
    DEBUG=False,
    SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "fwbench-hello-world-not-a-secret"),
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    DATABASES=_databases(),
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [BASE_DIR / "templates"],
        }
    ],
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import models  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.shortcuts import render  # noqa: E402
from django.urls import path  # noqa: E402


class World(models.Model):
    id = models.IntegerField(primary_key=True)
    randomnumber = models.IntegerField()

    class Meta:
        app_label = "fwbench"
        db_table = "world"
        managed = False


class Fortune(models.Model):
    id = models.IntegerField(primary_key=True)
    message = models.TextField()

    class Meta:
        app_label = "fwbench"
        db_table = "fortune"
        managed = False


def _queries_count(raw):
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return max(1, min(500, n))


def hello(request):
    return render(request, "hello.html", {"message": "Hello world!"})


def json_view(request):
    items = [
        {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
        for i in range(1, 101)
    ]
    return JsonResponse(items, safe=False)


def db(request):
    world = World.objects.get(id=random.randint(1, 10000))
    return JsonResponse({"id": world.id, "randomNumber": world.randomnumber})


def queries(request):
    n = _queries_count(request.GET.get("n"))
    worlds = [World.objects.get(id=random.randint(1, 10000)) for _ in range(n)]
    return JsonResponse([{"id": w.id, "randomNumber": w.randomnumber} for w in worlds], safe=False)


def fortunes(request):
    rows = list(Fortune.objects.all())
    rows.append(Fortune(id=0, message="Additional fortune added at request time."))
    rows.sort(key=lambda f: f.message)
    return render(request, "fortunes.html", {"fortunes": rows})


urlpatterns = [
    path("hello/", hello),
    path("json/", json_view),
    path("db/", db),
    path("queries/", queries),
    path("fortunes/", fortunes),
]

app = get_wsgi_application()
