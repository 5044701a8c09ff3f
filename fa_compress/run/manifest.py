"""The schema of `run.json`: one typed model of the manifest, checked on every read and every write.

A manifest is `{"format": 2, "created": ..., "written_by": ..., "stages": {name: entry}, "files":
{artifact: {"size_bytes", "sha256", "stage"}}}`. Each stage entry is checked against the model of its
kind (`finetune`, `prune` and `prune:<name>`, `export` and `export:<name>`, `bench`, `sweep`; any other
name gets the common fields only). Fields the schema knows must have the right type and range; fields
it does not know are kept untouched (a newer stage may add some); artifact names must stay inside the
run directory (an absolute path is an export written with `--out` to another folder).

>>> data = validate_manifest(json.loads(path.read_text()), source=path)   # the same dict, checked
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from ..errors import CheckpointError

SCHEMA_VERSION = 2
# 1: facompress 0.1.0 before the schema: the same stages, no "files" (no checksums).
READABLE_FORMATS = (1, SCHEMA_VERSION)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _file_name(value: str) -> str:
    """A file the run holds: relative, without `..` or NUL; absolute only for a file written elsewhere."""
    if not value or "\x00" in value:
        raise ValueError("must be a file name (non-empty, no NUL bytes)")
    path = PurePosixPath(value)
    if path.is_absolute():
        return value  # `export --out DIR` records where it wrote
    if ".." in path.parts or str(path) in ("", "."):
        raise ValueError("must name a file inside the run directory")
    return value


def _artifact(value: Any) -> Any:
    """An artifact: a file name, or `{"path": name, "source": model name}`."""
    if isinstance(value, str):
        return _file_name(value)
    if isinstance(value, dict):
        if not isinstance(value.get("path"), str):
            raise ValueError("must be a file name or an object whose 'path' is a file name")
        _file_name(value["path"])
        if value.get("source") is not None and not isinstance(value["source"], str):
            raise ValueError("must have a 'source' that is a model name")
        return value
    raise ValueError("must be a file name or an object with a 'path'")


FileName = Annotated[str, AfterValidator(_file_name)]
Artifact = Annotated[Any, AfterValidator(_artifact)]


class _Record(BaseModel):
    """Strict types for the fields named here; any other field is allowed and kept as it is."""

    model_config = ConfigDict(extra="allow", strict=True)


# A field declared `x: T = Field(None)` may be absent; when present it must be a T (null is refused).
class TrainRecord(_Record):
    schedule: list[str] = Field(min_length=1)
    seed: int
    batch_size: int = Field(None, ge=1)
    lr_head: float = Field(None, gt=0, lt=10)
    lr_head_tuning: float = Field(None, gt=0, lt=10)
    lr_gates: float = Field(None, gt=0, lt=10)
    lr_bn: float = Field(None, gt=0, lt=10)
    lr_all: float = Field(None, gt=0, lt=10)
    weight_decay: float = Field(None, ge=0)
    gate_l1: float = Field(None, ge=0)
    head_feature_epochs: int = Field(None, ge=1)
    min_phase_steps: int | None = Field(None, ge=0)  # null: the default floor (train/phase_steps.py)
    amp: bool = Field(None)
    channels_last: bool = Field(None)
    checkpoint_every: int = Field(None, ge=0)
    eval_every_phase: bool = Field(None)
    extra: dict[str, Any] = Field(None)


class FinetuneOptionsRecord(_Record):
    model: str = Field(min_length=1)
    data: str = Field(min_length=1)
    img_size: int = Field(ge=16, le=1024)
    limit_train: int | None = Field(ge=1)
    limit_test: int | None = Field(ge=1)
    val_fraction: float = Field(None, gt=0, le=0.5)
    train: TrainRecord
    weights: str = Field(None)
    data_root: str | None = Field(None)
    gates: bool | None = Field(None)
    device: str = Field(None)
    run: str | None = Field(None)
    show_progress: bool = Field(None)
    resume: bool = Field(None)


class DatasetRecord(_Record):
    classes: list[str] = Field(min_length=1)
    spec: str = Field(None)
    train_images: int = Field(None, ge=0)
    val_images: int = Field(None, ge=1)
    test_images: int = Field(None, ge=0)
    skipped_images: int = Field(None, ge=0)
    source: str = Field(None)


class StageEntry(_Record):
    """What every stage records."""

    status: str = Field(min_length=1)
    updated: str = Field(None)
    artifacts: dict[str, Artifact] = Field(None)
    metrics: dict[str, Any] = Field(None)


class FinetuneStage(StageEntry):
    options: FinetuneOptionsRecord
    world_size: int = Field(None, ge=1)
    dataset: DatasetRecord = Field(None)


class PruneMetrics(_Record):
    channels_before: dict[str, int] = Field(None)
    channels_after: dict[str, int] = Field(None)
    params_before: int = Field(None, ge=0)
    params_after: int = Field(None, ge=0)
    macs_before: int = Field(None, ge=0)
    macs_after: int = Field(None, ge=0)
    keep: float = Field(None, gt=0, le=1)


class PruneStage(StageEntry):
    settings: dict[str, Any] = Field(None)
    recover_epochs: int | None = Field(None, ge=0)  # null: the default budget (steps or the floor decided)
    recover_steps: int | None = Field(None, ge=1)
    recover_phase: str = Field(None)
    recover_lr: float = Field(None, gt=0)
    recover_batch_size: int = Field(None, ge=1)
    fade_epochs: int | None = Field(None, ge=0)
    fade_steps: int | None = Field(None, ge=1)
    too_deep: bool = Field(None)  # the saved model lost more validation accuracy than the threshold (pruning/depth.py)
    latency_search: dict[str, Any] | None = Field(None)
    metrics: PruneMetrics = Field(None)


class ExportStage(StageEntry):
    model: str = Field(None, min_length=1)
    options: dict[str, Any] = Field(None)
    parity: dict[str, Any] = Field(None)
    tensorrt: dict[str, Any] = Field(None)


class BenchStage(StageEntry):
    summary: dict[str, Any] = Field(None)
    skipped: list[str] = Field(None)


class SweepStage(StageEntry):
    keeps: list[float] = Field(None)


STAGE_MODELS: dict[str, type[StageEntry]] = {
    "finetune": FinetuneStage, "prune": PruneStage, "export": ExportStage, "bench": BenchStage, "sweep": SweepStage,
}


class FileRecord(_Record):
    """Size and SHA-256 of a file when facompress wrote it, and the stage that did."""

    size_bytes: int = Field(ge=0)
    sha256: str = Field(pattern=_SHA256.pattern)
    stage: str | None = Field(None)
    written: str = Field(None)


class Manifest(_Record):
    format: int = Field(ge=1)
    stages: dict[str, dict[str, Any]]
    files: dict[FileName, FileRecord] = Field(None)
    created: str = Field(None)
    written_by: str = Field(None)
    upgraded_from: int = Field(None, ge=1)


class NormalizationRecord(_Record):
    mean: list[float] = Field(min_length=1, max_length=4)
    std: list[float] = Field(min_length=1, max_length=4)


class StructureEntry(_Record):
    """One layer's channel counts (`models.structure.describe_structure`)."""

    kind: str
    in_: int = Field(None, alias="in", ge=1)
    out: int = Field(None, ge=1)
    groups: int = Field(None, ge=1)
    features: int = Field(None, ge=1)


class ModelMetaRecord(_Record):
    """The rebuild metadata a model file carries (`run.model_meta`)."""

    arch: str = Field(min_length=1)
    num_classes: int = Field(ge=1, le=1_000_000)
    structure: dict[str, StructureEntry]
    classes: list[str] = Field(None)
    img_size: int = Field(None, ge=8, le=1024)
    normalization: NormalizationRecord = Field(None)
    gated: bool = Field(None)
    stage: str = Field(None)


def validate_model_meta(meta: Any, source: Path) -> dict[str, Any]:
    """`meta` itself when it is well-formed model-file metadata; else `CheckpointError` naming the field."""
    try:
        ModelMetaRecord.model_validate(meta)
    except ValidationError as exc:
        raise CheckpointError(f"{source} has damaged facompress metadata: {describe_error(exc, ('metadata',))}; "
                              f"re-create it by re-running the stage that wrote it") from None
    classes = meta.get("classes")
    if classes is not None and len(classes) != meta["num_classes"]:
        raise CheckpointError(f"{source} has damaged facompress metadata: {len(classes)} class names for "
                              f"{meta['num_classes']} classes; re-create it")
    return meta


def stage_model(name: str) -> type[StageEntry]:
    """The model a stage called `name` is checked against (`prune:keep0.5` -> the prune model)."""
    return STAGE_MODELS.get(name.split(":", 1)[0], StageEntry)


def validate_manifest(data: Any, source: Path) -> dict[str, Any]:
    """`data` itself when it is a manifest this facompress reads; else `CheckpointError`, one line naming
    `source`, the field and what was expected."""
    if not isinstance(data, dict) or "stages" not in data:
        raise CheckpointError(f"{source} is not a facompress manifest (a JSON object with 'stages'); "
                              f"pass the folder of a run made by `facompress finetune`")
    _check_format(data, source)
    _validate(Manifest, data, (), source, data)
    for name, entry in data["stages"].items():
        _validate(stage_model(name), entry, ("stages", name), source, data)
    return data


def _check_format(data: dict[str, Any], source: Path) -> None:
    from .. import __version__

    fmt = data.get("format")
    if "format" not in data:
        raise CheckpointError(f"{source}: field format is required but missing; no facompress version wrote "
                              f"this manifest (every one records its format)")
    if type(fmt) is int and fmt > SCHEMA_VERSION:
        by = data.get("written_by") if isinstance(data.get("written_by"), str) else "a newer facompress"
        raise CheckpointError(f"{source} was written by {by} (manifest format {fmt}); this facompress "
                              f"{__version__} reads formats {READABLE_FORMATS[0]}-{SCHEMA_VERSION}: "
                              f"upgrade facompress to use this run")


def _validate(model: type[BaseModel], value: Any, prefix: tuple[str, ...], source: Path,
              manifest: dict[str, Any]) -> None:
    from .. import __version__

    try:
        model.model_validate(value)
    except ValidationError as exc:
        by = manifest.get("written_by")
        hint = f" (written by {by})" if isinstance(by, str) and by != f"facompress {__version__}" else ""
        raise CheckpointError(f"{source}{hint}: {describe_error(exc, prefix)}; the manifest is damaged or was "
                              f"edited: restore run.json from a copy of the run or re-run that stage") from None


_EXPECTED = {"dict_type": "an object", "model_type": "an object", "model_attributes_type": "an object",
             "int_type": "an integer", "float_type": "a number", "string_type": "a string",
             "bool_type": "true or false", "list_type": "a list", "none_required": "null"}


def describe_error(exc: ValidationError, prefix: tuple[str, ...] = ()) -> str:
    """The first problem pydantic found, as `field a.b.c must be ... (got ...)`."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in (*prefix, *err["loc"])) or "(top level)"
    if err["type"] == "missing":
        return f"field {loc} is required but missing"
    message = str(err["msg"])
    if err["type"] == "value_error":
        phrase = message.removeprefix("Value error, ")
    else:
        phrase = "must be " + _EXPECTED.get(err["type"], message.removeprefix("Input should be "))
    return f"field {loc} {phrase} (got {_short(err.get('input'))})"


def _short(value: Any, width: int = 60) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= width else text[: width - 3] + "..."
