"""``python -m loadgen.rawclient --worker``: one worker process of a multi-process run."""

from __future__ import annotations

import sys

from loadgen.rawclient.fanout import _child_main

if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        sys.exit(_child_main())
    sys.exit("usage: python -m loadgen.rawclient --worker (started by run_load)")
