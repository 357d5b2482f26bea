import os

from reahlhello.ui import HelloUI

web.site_root = HelloUI
web.csrf_key = os.environ.get("REAHL_CSRF_KEY", "fwbench-benchmark-only-not-a-secret")
# Only used to build absolute URLs when switching scheme (the hello page never does).
web.default_http_port = 80
web.encrypted_http_port = 443
web.static_root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "static")
