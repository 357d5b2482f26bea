import argparse
import signal
import sys

from robyn import Robyn

app = Robyn(__file__)


@app.get("/hello/")
async def hello():
    return {"message": "Hello world!"}


def _exit_on_sigterm(signum, frame):
    sys.exit(0)


if __name__ == "__main__":
    # Robyn reads its own flags (--processes, --workers, --log-level, --disable-openapi)
    # from argv; host and port are arguments of start().
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args, _ = parser.parse_known_args()
    # With one process, Robyn's Rust server (actix) catches SIGTERM and stops serving,
    # but the Python event loop keeps the process alive forever. A Python handler
    # installed first is chained by the Rust side and ends the process.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # _check_port=False: with the port taken, Robyn would otherwise loop forever
    # prompting on stdin for another port instead of failing.
    app.start(host=args.host, port=args.port, _check_port=False)
