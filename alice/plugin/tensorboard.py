"""The built-in tracker: TensorBoard event files, written by the ``tensorboard`` package's own writer.

``tensorboard --logdir DIR`` shows them. Each job writes its own folder below the log
directory, ``<space folder>/<name>-<job>-<time>``; loss terms are logged as ``train/<term>``,
validation figures as ``val/<figure>``, and ``lr`` and ``steps_per_second`` as they are.
The package is an optional extra (``pip install 'alice-align[tensorboard]'``).
"""

from __future__ import annotations

import time
from typing import Any

from alice.plugin.tracker import Run, Tracker

PREFIX = "val_"


def tag(key: str) -> str:
    """The TensorBoard tag of a history key: ``rec`` -> ``train/rec``, ``val_auroc`` -> ``val/auroc``."""
    if key.startswith(PREFIX):
        return f"val/{key[len(PREFIX) :]}"
    return key if key in ("lr", "steps_per_second") else f"train/{key}"


class TensorBoardTracker(Tracker):
    name = "tensorboard"

    def start(self, run: Run) -> None:
        try:
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
        except ImportError:
            raise RuntimeError(
                "the tensorboard package is not installed: pip install 'alice-align[tensorboard]'"
            ) from None

        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.folder = (
            self.directory / (run.label or run.name).replace("/", "-") / f"{run.job.replace(' ', '-')}-{stamp}"
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        self.writer = EventFileWriter(str(self.folder))
        text = f"{run.job} of {run.name}: {run.steps} steps; space {run.space}"
        self._event(0, [self._text("run", text)])

    @staticmethod
    def _text(name: str, text: str) -> Any:
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.compat.proto.tensor_pb2 import TensorProto
        from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto

        meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="text"))
        tensor = TensorProto(
            dtype=7, string_val=[text.encode()], tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)])
        )
        return Summary.Value(tag=name, metadata=meta, tensor=tensor)

    def _event(self, step: int, values: list) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        self.writer.add_event(Event(wall_time=time.time(), step=step, summary=Summary(value=values)))

    def log(self, step: int, values: dict[str, float]) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        self._event(
            step,
            [
                Summary.Value(tag=tag(k), simple_value=float(v))
                for k, v in values.items()
                if k != "step" and v is not None
            ],
        )

    def end(self, outcome: dict[str, Any]) -> None:
        self.writer.flush()
        self.writer.close()
