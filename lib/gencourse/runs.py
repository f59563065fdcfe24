"""The skeleton every training run shares: OUT/checkpoint/ with the trainer's own files and state.json.

`state.json` holds the last finished epoch, the history so far, the run's
settings and whatever else the run needs to continue exactly (the VAE's
reconstruction snapshots, say). `resume` refuses a checkpoint trained with
other settings and names the keys that changed; settings that only lengthen
a run (`lengthening`, e.g. the number of epochs) may change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class RunState:
    def __init__(self, out, settings: dict, lengthening=("epochs",)):
        self.folder = Path(out) / "checkpoint"
        self.file = self.folder / "state.json"
        self.settings = dict(settings)
        self.lengthening = tuple(lengthening)

    def changed(self, saved: dict) -> str:
        """The settings that differ from the checkpoint's, in words ("" when none)."""
        return ", ".join(f"{k} {saved.get(k)!r} there, {v!r} now" for k, v in self.settings.items()
                         if saved.get(k) != v and k not in self.lengthening)

    def resume(self, trainer) -> dict | None:
        """The saved state, after loading the trainer's; None when there is no checkpoint."""
        if not self.file.is_file():
            return None
        try:
            state = json.loads(self.file.read_text())
        except ValueError as e:
            raise ValueError(f"{self.file}: not a readable checkpoint state ({e}); remove the folder "
                             "or use another --out") from None
        saved = state.get("settings", state.get("config"))    # None: a checkpoint too old to tell
        diff = self.changed(saved) if saved is not None else ""
        if diff:
            raise ValueError(f"{self.file}: the checkpoint was trained with other settings ({diff}); "
                             "use another --out or the same options")
        trainer.load(self.folder)
        return state

    def save(self, trainer, epoch: int, history: list, **extra) -> None:
        """The trainer's files, then state.json (written last and atomically: a state names only
        files that are there)."""
        trainer.save(self.folder)
        tmp = self.file.with_name(f".{self.file.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"epoch": epoch, "history": history, "settings": self.settings, **extra}))
        os.replace(tmp, self.file)
