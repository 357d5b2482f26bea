"""``python -m loadgen.sampler '<json config>'``: the sampler's process (see :mod:`.child`)."""

import sys

from loadgen.sampler.child import main

sys.exit(main(sys.argv[1:]))
