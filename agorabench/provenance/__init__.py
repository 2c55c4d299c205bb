"""Provenance: a record beside every job's outputs saying what ran, on what, and what came out; the
lineage of any result rebuilt from those records (trace, verify, lineage Markdown) and data cards."""

from agorabench.provenance.record import job

__all__ = ["job"]
