"""Errors of the analysis side, in a module light enough for the CLI to import at start-up."""

from __future__ import annotations


class LoadError(ValueError):
    """A run directory this code cannot read; the message names the file and the reason."""


class ReportDirError(ValueError):
    """A report folder this code will not write into (it holds something that is not a report
    of ours); the message names it."""
