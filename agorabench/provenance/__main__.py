import sys

from agorabench.provenance.cli import main

sys.exit(main())
