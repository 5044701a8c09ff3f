"""The run directory: where every stage reads its inputs and writes its artifacts and metrics.

`directory.py` the `Run` folder and its manifest (`run.json`), `manifest.py` the manifest's schema,
`files.py` atomic writes and model files (safetensors + JSON metadata, never unpickled code),
`integrity.py` checksums, `check.py` the whole-run check, `lock.py` the one-writer lock (`<run>/.lock`). This
layer stores bytes and records; what a model file means (rebuilding its architecture) is
`fa_compress.models.saved`.

>>> run = Run.resolve(None)                 # the latest run
>>> with run.writer("prune"):              # RunLockedError while another command writes the run
...     run.record("prune", {"status": "done", ...})
"""

from .check import FileCheck, RunCheck, check_run
from .directory import (LATEST, MANIFEST, Run, artifact_names, finetune_options, load_train_state, runs_root,
                        save_train_state)
from .files import (atomic_write_bytes, load_model_file, load_state_dict_file, load_torch_file, save_model_file,
                    save_torch_file)
from .integrity import Digest, file_digest
from .lock import LOCK_FILE, RunLock, writer_lock
from .manifest import validate_manifest, validate_model_meta

__all__ = ["LATEST", "LOCK_FILE", "MANIFEST", "Digest", "FileCheck", "Run", "RunCheck", "RunLock", "artifact_names",
           "atomic_write_bytes", "check_run", "file_digest", "finetune_options", "load_model_file",
           "load_state_dict_file", "load_torch_file", "load_train_state", "runs_root", "save_model_file",
           "save_torch_file", "save_train_state", "validate_manifest", "validate_model_meta", "writer_lock"]
