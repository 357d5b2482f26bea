"""fwbench's load side: targets, environments, launcher, verifier, clients and runs."""
