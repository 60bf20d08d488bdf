"""Entry point of one DDP case: ``python worker.py CASE OUTDIR PARAMS_JSON``.

Lightning re-runs this same command line for every other rank.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.ddp.cases import CASES

if __name__ == "__main__":
    name, out, params = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
    CASES[name](out, **params)
