import argparse

from hypern import Hypern

# log_level "warning": at "info" (the default) Hypern logs two lines per request.
app = Hypern(log_level="warning")


@app.get("/hello/")
async def hello(req, res, ctx):
    res.json({"message": "Hello world!"})


if __name__ == "__main__":
    # Hypern is its own server (Rust, Axum); host, port and processes are start() arguments.
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    app.start(host=args.host, port=args.port, num_processes=args.processes)
