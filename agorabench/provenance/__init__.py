"""Provenance: a record beside every job's outputs saying what ran, on what, and what came out."""

from agorabench.provenance.record import job

__all__ = ["job"]
