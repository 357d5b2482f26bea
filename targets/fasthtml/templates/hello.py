"""The page as FastHTML FT components (FastHTML's own templating): the message comes in."""

from fasthtml.common import Main, P, Title


def hello_page(message):
    return Title("fwbench"), Main(P(message))
