"""fwbench's analysis side: loading runs, statistics, charts, reports, history."""
