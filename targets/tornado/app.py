import argparse
import asyncio
import os

import tornado.httpserver
import tornado.netutil
import tornado.process
import tornado.web

HERE = os.path.dirname(os.path.abspath(__file__))


class HelloHandler(tornado.web.RequestHandler):
    def get(self):
        self.render("hello.html", message="Hello world!")


def make_app():
    return tornado.web.Application(
        [(r"/hello/?", HelloHandler)],
        template_path=os.path.join(HERE, "templates"),
    )


async def serve(sockets):
    server = tornado.httpserver.HTTPServer(make_app())
    server.add_sockets(sockets)
    await asyncio.Event().wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    sockets = tornado.netutil.bind_sockets(args.port, address=args.host)
    if args.workers > 1:
        tornado.process.fork_processes(args.workers)
    asyncio.run(serve(sockets))


if __name__ == "__main__":
    main()
