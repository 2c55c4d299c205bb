"""Package data of the offline demo (see demo/README.md)."""
