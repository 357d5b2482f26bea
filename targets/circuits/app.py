"""circuits.web on its own Server, Jinja2 template."""
import argparse
import os
import socket

import jinja2
from circuits.web import Controller, Server

HERE = os.path.dirname(os.path.abspath(__file__))
templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")),
    autoescape=True,
)


class Root(Controller):
    def hello(self):
        self.response.headers["Content-Type"] = "text/html; charset=utf-8"
        return templates.get_template("hello.html").render(message="Hello world!")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    options = {}
    if args.workers > 1:
        # circuits runs one process; for more, fork and let each bind with SO_REUSEPORT
        options["socket_options"] = [(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)]
        for _ in range(args.workers - 1):
            if os.fork() == 0:
                break

    (Server((args.host, args.port), **options) + Root()).run()


if __name__ == "__main__":
    main()
