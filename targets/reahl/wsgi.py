import os

from reahl.web.fw import ReahlWSGIApplication

application = ReahlWSGIApplication.from_directory(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "etc"),
    start_on_first_request=True,
)
