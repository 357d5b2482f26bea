"""CherryPy on its own server (cheroot via cherrypy.quickstart), Jinja2 template."""
import argparse
import logging
import os
import socket

import cherrypy
import jinja2
from cherrypy._cpwsgi_server import CPWSGIServer

HERE = os.path.dirname(os.path.abspath(__file__))
templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")),
    autoescape=True,
)


class Root:
    @cherrypy.expose
    def hello(self):
        return templates.get_template("hello.html").render(message="Hello world!")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    # production: no autoreload, no checker, no tracebacks, no screen logging (so no access log)
    cherrypy.config.update({
        "environment": "production",
        "server.socket_host": args.host,
        "server.socket_port": args.port,
    })
    # keep errors on stderr
    cherrypy.log.error_log.addHandler(logging.StreamHandler())

    if args.workers > 1:
        # CherryPy serves one process; for more, pre-fork over one listening socket
        # handed to cheroot the way systemd socket activation does (fd 3 + LISTEN_PID).
        sock = socket.create_server((args.host, args.port), backlog=1024)
        os.dup2(sock.fileno(), 3)
        os.environ["LISTEN_PID"] = str(os.getpid())
        for _ in range(args.workers - 1):
            if os.fork() == 0:
                break

    # cheroot keeps at most 10 idle keep-alive connections and answers the rest with
    # "Connection: close"; CherryPy has no config key for it, so hand it the server instance.
    server = CPWSGIServer(cherrypy.server)
    server.keep_alive_conn_limit = None
    cherrypy.server.instance = server

    cherrypy.quickstart(Root())


if __name__ == "__main__":
    main()
