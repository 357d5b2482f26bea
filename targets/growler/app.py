import argparse
import asyncio
import os
import socket

from growler import App
from growler.middleware import StringRenderer

HERE = os.path.dirname(os.path.abspath(__file__))


def make_app():
    app = App("hello")
    app.use(StringRenderer(os.path.join(HERE, "templates")))

    @app.get("/hello/")
    def hello(req, res):
        res.render("hello", {"message": "Hello world!"})

    return app


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    # Bind once, then fork: every worker process accepts on the same socket.
    sock = socket.create_server((args.host, args.port), backlog=1024)
    for _ in range(args.workers - 1):
        if os.fork() == 0:
            break
    asyncio.set_event_loop(asyncio.new_event_loop())
    make_app().create_server_and_run_forever(sock=sock)


if __name__ == "__main__":
    main()
