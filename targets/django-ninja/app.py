"""Django Ninja as a one-file Django app: settings.configure(), one NinjaAPI operation."""

import os

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "fwbench-hello-world-not-a-secret"),
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    INSTALLED_APPS=["ninja"],
)

import django  # noqa: E402

django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.urls import path  # noqa: E402
from ninja import NinjaAPI  # noqa: E402

api = NinjaAPI(docs_url=None, openapi_url=None)


@api.get("/hello/")
def hello(request):
    return {"message": "Hello world!"}


urlpatterns = [path("", api.urls)]

app = get_wsgi_application()
