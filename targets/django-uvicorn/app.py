"""Django as a one-file app served over ASGI: settings.configure(), one view, Django templates."""
import os
from pathlib import Path

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.shortcuts import render
from django.urls import path

BASE_DIR = Path(__file__).resolve().parent

settings.configure(
    DEBUG=False,
    SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "fwbench-hello-world-not-a-secret"),
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [BASE_DIR / "templates"],
        }
    ],
)


def hello(request):
    return render(request, "hello.html", {"message": "Hello world!"})


urlpatterns = [path("hello/", hello)]

app = get_asgi_application()
