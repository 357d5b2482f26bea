"""FastHTML: fast_app() with its default headers; the page is built from FT components."""

import os

from fasthtml.common import fast_app
from templates.hello import hello_page

# A fixed key: without one FastHTML writes a .sesskey file into the folder.
app, rt = fast_app(secret_key=os.environ.get("FASTHTML_SECRET_KEY", "fwbench-not-a-secret"))


@rt("/hello/")
def get():
    return hello_page("Hello world!")
