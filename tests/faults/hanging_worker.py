"""worker.py with one function made to stop mid-job, for the fault tests.

FAULT_HANG=module:function names the function; after it returns, the job waits (alive, with its
heartbeat going) until the file FAULT_RELEASE exists. It waits only the first time (the file
FAULT_REACHED marks that), so a retry in the same worker runs through.
"""

import importlib
import os
import sys
import time
from pathlib import Path


def _install() -> None:
    module_name, _, name = os.environ["FAULT_HANG"].partition(":")
    module = importlib.import_module(module_name)
    original = getattr(module, name)
    reached, release = Path(os.environ["FAULT_REACHED"]), Path(os.environ["FAULT_RELEASE"])

    def hanging(*args, **kwargs):
        result = original(*args, **kwargs)
        if not reached.exists():
            reached.write_text(str(os.getpid()))
            deadline = time.monotonic() + 600
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        return result

    setattr(module, name, hanging)


_install()  # also in the cron child process (spawned: it imports this module again), harmlessly

if __name__ == "__main__":
    import worker

    worker.main(sys.argv[1:])
