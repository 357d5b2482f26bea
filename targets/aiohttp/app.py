import argparse
import os
import socket

import aiohttp_jinja2
import jinja2
from aiohttp import web

HERE = os.path.dirname(os.path.abspath(__file__))


@aiohttp_jinja2.template("hello.html")
async def hello(request):
    return {"message": "Hello world!"}


def make_app():
    app = web.Application()
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")))
    app.router.add_get("/hello/", hello)
    app.router.add_get("/hello", hello)
    return app


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    # Bind once, then fork: every worker process accepts on the same socket.
    sock = socket.create_server((args.host, args.port), backlog=1024)
    for _ in range(args.workers - 1):
        if os.fork() == 0:
            break
    web.run_app(make_app(), sock=sock, access_log=None, print=None)


if __name__ == "__main__":
    main()
