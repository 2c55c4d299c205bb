"""agorabench: the AgoraBench study (Kim et al., 2024, arXiv 2412.03679) as an importable package.

Sub-packages follow the workflow's stages: data -> generation -> training -> evaluation -> analysis,
with provenance beside each. `llm` holds the one generation-backend interface shared by generators
and judges.
"""

__version__ = "0.1.0"
