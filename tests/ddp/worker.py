"""Entry point of one DDP case: ``python worker.py CASE OUTDIR PARAMS_JSON``.

``CASE`` ``__batch__`` runs the cases ``[[case, params], ...]`` of ``PARAMS_JSON`` one after
the other, each saving under ``OUTDIR/<index>-<case>``. Lightning re-runs this same command
line for every other rank.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.ddp.cases import CASES
from tests.ddp.harness import BATCH_CASE, case_folder

if __name__ == "__main__":
    name, out, params = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
    if name == BATCH_CASE:
        for index, (case, case_params) in enumerate(params):
            folder = out / case_folder(index, case)
            folder.mkdir(parents=True, exist_ok=True)
            print(f"== DDP case {case} {case_params}", flush=True)
            CASES[case](folder, **case_params)
    else:
        CASES[name](out, **params)
