"""The bad-input cases, per command: each a command line the CLI must refuse (test_bad_input.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.cli.bad_input_scene import Case, Scene, ft, garble, image_folder, set_json, truncate


def _resnet18_in_mobilenet_run(s: Scene) -> list[str]:
    """A well-formed resnet18 model file copied over the mobilenet_v2 run's fine-tuned model."""
    shutil.copyfile(s.resnet18_file(), s.run / "finetuned.safetensors")
    return ["prune", "--run", str(s.run), "--quiet"]


def _other_class_count(s: Scene) -> list[str]:
    """The run's own model with a 3-class head, saved consistently, in a run fine-tuned on 10 classes."""
    import torch

    from fa_compress.models.saved import load_model, model_meta, save_model

    model, meta = load_model(s.run / "finetuned.safetensors")
    model.classifier[1] = torch.nn.Linear(model.classifier[1].in_features, 3)
    save_model(s.run / "finetuned.safetensors", model,
               model_meta(model, arch="mobilenet_v2", classes=meta["classes"][:3], img_size=meta["img_size"],
                          normalization=meta["normalization"]))
    return ["prune", "--run", str(s.run), "--quiet"]


def _meta_says_other_arch(s: Scene) -> list[str]:
    """resnet18 tensors under metadata that claims mobilenet_v2."""
    from fa_compress.run import load_model_file, save_model_file

    tensors, _ = load_model_file(s.resnet18_file())
    _, meta = load_model_file(s.run / "pruned.safetensors")
    save_model_file(s.run / "pruned.safetensors", tensors, meta)
    return ["export", "--run", str(s.run)]


def _finetune_stage_missing(s: Scene) -> Path:
    set_json(s.run / "run.json", lambda m: m["stages"].pop("finetune"))
    return s.run


def _unfinished_run(s: Scene) -> Path:
    """A run folder as `Run.create` leaves it: a manifest, no stage."""
    from fa_compress.run import Run

    return Run.create(path=s.tmp / "fresh").path


def _not_a_run(s: Scene) -> Path:
    folder = s.folder("notarun")
    (folder / "notes.txt").write_text("hello\n")
    return folder


def _under_a_file(s: Scene) -> Path:
    return s.file("somefile") / "sub"


NETS = Path(__file__).resolve().parents[1] / "models" / "user_nets.py"  # factories for --model file.py:factory

FINETUNE = [
    Case("unknown-model", lambda s: ft(model="foo"), "model"),
    Case("unknown-gate-penalty", lambda s: ft("--gate-penalty", "l3"), "gate-penalty"),
    Case("unknown-model-close-match", lambda s: ft(model="resnet19"), "facompress models"),
    Case("vision-transformer", lambda s: ft(model="vit_b_16"), "vision transformer"),
    Case("img-size-below-model-minimum", lambda s: ft(model="inception_v3"), "75 px"),
    Case("timm-unknown-name", lambda s: ft(model="timm:resnt18"), "timm"),
    Case("user-code-without-trust-code", lambda s: ft(model=f"{NETS}:norm_zoo"), "--trust-code"),
    Case("user-code-file-missing", lambda s: ft("--trust-code", model=f"{s.tmp / 'nope.py'}:net"), "does not exist"),
    Case("user-code-not-a-module", lambda s: ft("--trust-code", model=f"{NETS}:not_a_module"), "nn.Module"),
    Case("user-code-no-such-factory", lambda s: ft("--trust-code", model=f"{NETS}:nope"), "has no function"),
    Case("unknown-data", lambda s: ft(data="bar"), "dataset"),
    Case("unknown-phase", lambda s: ft(schedule="head,gatez"), "gatez"),
    Case("empty-schedule", lambda s: ft(schedule=","), "schedule"),
    Case("img-size-3", lambda s: ft(img_size="3"), "img-size"),
    Case("batch-size-0", lambda s: ft(batch_size="0"), "batch-size"),
    Case("limit-train-negative", lambda s: ft(limit_train="-5"), "limit-train"),
    Case("checkpoint-every-negative", lambda s: ft("--checkpoint-every", "-1"), "checkpoint-every"),
    Case("nproc-0", lambda s: ft("--nproc", "0"), "nproc"),
    Case("device-unknown", lambda s: ft("--device", "qux"), "device"),
    Case("memory-format-unknown", lambda s: ft("--memory-format", "nhwc"), "memory-format"),
    Case("fake-classes-not-a-number", lambda s: ft(data="fake:x"), "fake"),
    Case("val-fraction-0", lambda s: ft(val_fraction="0"), "val-fraction"),
    Case("val-fraction-negative", lambda s: ft(val_fraction="-0.1"), "val-fraction"),
    Case("val-fraction-above-half", lambda s: ft(val_fraction="0.6"), "val-fraction"),
    Case("val-fraction-not-a-number", lambda s: ft(val_fraction="tenth"), "val-fraction"),
    Case("val-fraction-leaves-a-class-without-validation",  # 4 images a class: 1 test, 3 train, round(0.3) = 0
         lambda s: ft(data=f"imagefolder:{image_folder(s, n_per_class=4)}"), "no validation image"),
    Case("weights-missing", lambda s: ft(weights=str(s.tmp / "nope.pt")), "does not exist"),
    Case("weights-empty-file", lambda s: ft(weights=str(s.file("empty.pt"))), "corrupt"),
    Case("weights-truncated-pt", lambda s: ft(weights=str(truncate(s.run / "train_state.pt"))), "corrupt"),
    Case("weights-random-bytes-safetensors", lambda s: ft(weights=str(s.file("w.safetensors", os.urandom(999)))),
         "safetensors"),
    Case("weights-other-architecture", lambda s: ft(weights=str(s.resnet18_file())), "mobilenet_v2"),
    Case("weights-not-a-state-dict", lambda s: ft(weights=str(s.run / "train_state.pt")), "state dict"),
    Case("imagefolder-missing", lambda s: ft(data=f"imagefolder:{s.tmp / 'nope'}"), "does not exist"),
    Case("imagefolder-empty", lambda s: ft(data=f"imagefolder:{s.folder('empty')}"), "no class folders"),
    Case("imagefolder-no-path", lambda s: ft(data="imagefolder:"), "imagefolder"),
    Case("imagefolder-10pct-corrupt", lambda s: ft(data=f"imagefolder:{image_folder(s, corrupt=2)}"),
         "cannot be read"),
    Case("run-under-a-file", lambda s: ft("--run", str(_under_a_file(s))), "somefile"),
    Case("run-is-a-file", lambda s: ft("--run", str(s.file("run.txt", b"x"))), "is a file"),
    Case("run-not-empty", lambda s: ft("--run", str(_not_a_run(s))), "not empty"),
    Case("run-already-a-run", lambda s: ft("--run", str(s.run)), "already"),
    Case("resume-missing-run", lambda s: ["finetune", "--resume", "--run", str(s.tmp / "nope")], "does not exist"),
    Case("resume-empty-folder", lambda s: ["finetune", "--resume", "--run", str(s.folder("empty"))], "not a facompress run"),
    Case("resume-no-runs-at-all", lambda s: ["finetune", "--resume"], "no run found"),
    Case("resume-finished-run", lambda s: ["finetune", "--resume", "--run", str(s.run)], "already finished"),
    Case("resume-truncated-state", lambda s: ["finetune", "--resume", "--run", str(s.run)], "corrupt",
         prepare=lambda s: truncate(s.run / "train_state.pt")),
    Case("resume-no-state", lambda s: ["finetune", "--resume", "--run", str(s.copy_run(drop=("train_state.pt",)))],
         "train_state.pt"),
    Case("resume-run-without-finetune", lambda s: ["finetune", "--resume", "--run", str(_unfinished_run(s))],
         "no fine-tuning"),
    Case("option-not-a-number", lambda s: ft(img_size="big"), "img-size"),
    Case("unknown-option", lambda s: ft("--frobnicate"), "frobnicate"),
]

GATES = [
    Case("missing-run", lambda s: ["gates", "--run", str(s.tmp / "nope")], "does not exist"),
    Case("not-a-run", lambda s: ["gates", "--run", str(_not_a_run(s))], "not a facompress run"),
    Case("no-latest-run", lambda s: ["gates"], "no run found"),
    Case("ungated-run", lambda s: ["gates", "--run", str(s.copy_run("ungated"))], "without gates"),
    Case("no-gates-json", lambda s: ["gates", "--run", str(s.copy_run(drop=("gates.json",)))], "gates.json"),
    Case("corrupt-gates-json", lambda s: ["gates", "--run", str(s.run)], "JSON",
         prepare=lambda s: (s.run / "gates.json").write_text("[{")),
    Case("manifest-not-json", lambda s: ["gates", "--run", str(s.run)], "JSON",
         prepare=lambda s: (s.run / "run.json").write_text("{nope")),
]


def _prune(s: Scene, *extra: str, which: str = "gated") -> list[str]:
    return ["prune", "--run", str(s.copy_run(which)), "--recover-epochs", "0", "--quiet", *extra]


PRUNE = [
    Case("keep-0", lambda s: _prune(s, "--keep", "0"), "keep"),
    Case("keep-negative", lambda s: _prune(s, "--keep", "-1"), "keep"),
    Case("keep-1.5", lambda s: _prune(s, "--keep", "1.5"), "keep"),
    Case("keep-not-a-number", lambda s: _prune(s, "--keep", "most"), "keep"),
    Case("target-macs-0", lambda s: _prune(s, "--target-macs", "0"), "target-macs"),
    Case("target-macs-1", lambda s: _prune(s, "--target-macs", "1"), "target-macs"),
    Case("target-params-1.5", lambda s: _prune(s, "--target-params", "1.5"), "target-params"),
    Case("keep-and-target-macs", lambda s: _prune(s, "--keep", "0.6", "--target-macs", "0.5"), "one budget"),
    Case("target-macs-and-latency", lambda s: _prune(s, "--target-macs", "0.5", "--target-latency-ms", "5"),
         "one budget"),
    Case("target-macs-unreachable", lambda s: _prune(s, "--target-macs", "0.001"), "smallest reachable"),
    Case("unknown-gate-score", lambda s: _prune(s, "--gate-score", "norm"), "gate score"),
    Case("gate-per-mac-3", lambda s: _prune(s, "--gate-per-mac", "3"), "gate-per-mac"),
    Case("score-images-0", lambda s: _prune(s, "--score-images", "0"), "score-images"),
    Case("unknown-importance", lambda s: _prune(s, "--importance", "baz"), "importance"),
    Case("unknown-scope", lambda s: _prune(s, "--scope", "local"), "scope"),
    Case("unknown-memory-format", lambda s: _prune(s, "--memory-format", "nhwc"), "memory-format"),
    Case("round-to-0", lambda s: _prune(s, "--round-to", "0"), "round-to"),
    Case("unknown-gate-reduction", lambda s: _prune(s, "--gate-reduction", "median"), "reduction"),
    Case("recover-epochs-negative", lambda s: _prune(s, "--recover-epochs", "-1"), "recover-epochs"),
    Case("fade-epochs-negative", lambda s: _prune(s, "--fade-epochs", "-1"), "fade-epochs"),
    Case("fade-without-gate-ranking", lambda s: _prune(s, "--fade-epochs", "1", "--importance", "l1"),
         "needs --importance gate"),
    Case("recover-lr-0", lambda s: _prune(s, "--recover-lr", "0"), "recover-lr"),
    Case("recover-batch-size-0", lambda s: _prune(s, "--recover-batch-size", "0"), "recover-batch-size"),
    Case("seed-negative", lambda s: _prune(s, "--seed", "-1"), "seed"),
    Case("seed-not-a-number", lambda s: _prune(s, "--seed", "x"), "seed"),
    Case("unknown-recover-phase", lambda s: _prune(s, "--recover-phase", "head"), "recover-phase"),
    Case("ignore-unknown-layer", lambda s: _prune(s, "--ignore", "layer9.conv"), "layer9.conv"),
    Case("unknown-backend", lambda s: _prune(s, "--target-latency-ms", "5", "--backend", "qux"), "qux"),
    Case("unknown-backend-without-target", lambda s: _prune(s, "--backend", "qux"), "qux"),
    Case("latency-batch-size-0", lambda s: _prune(s, "--target-latency-ms", "5", "--batch-size", "0"), "batch-size"),
    Case("gate-importance-on-ungated-run", lambda s: _prune(s, which="ungated"), "gates"),
    Case("missing-run", lambda s: ["prune", "--run", str(s.tmp / "nope")], "does not exist"),
    Case("empty-folder", lambda s: ["prune", "--run", str(s.folder("empty"))], "not a facompress run"),
    Case("not-a-run", lambda s: ["prune", "--run", str(_not_a_run(s))], "not a facompress run"),
    Case("run-is-a-file", lambda s: ["prune", "--run", str(s.file("run.txt", b"x"))], "does not exist"),
    Case("manifest-not-an-object", lambda s: ["prune", "--run", str(s.run)], "manifest",
         prepare=lambda s: (s.run / "run.json").write_text("[1, 2]")),
    Case("no-finished-finetune", lambda s: ["prune", "--run", str(_unfinished_run(s))], "fine-tuning"),
    Case("finetune-stage-removed", lambda s: ["prune", "--run", str(_finetune_stage_missing(s))], "fine-tuning"),
    Case("no-finetuned-checkpoint", lambda s: _prune(s), "finetuned",
         prepare=lambda s: (s.run / "finetuned.safetensors").unlink()),
    Case("truncated-checkpoint", lambda s: _prune(s), "safetensors",
         prepare=lambda s: truncate(s.run / "finetuned.safetensors")),
    Case("random-bytes-checkpoint", lambda s: _prune(s), "safetensors",
         prepare=lambda s: garble(s.run / "finetuned.safetensors")),
    Case("empty-checkpoint", lambda s: _prune(s), "safetensors",
         prepare=lambda s: garble(s.run / "finetuned.safetensors", 0)),
    Case("other-architecture-checkpoint", _resnet18_in_mobilenet_run, "resnet18"),
    Case("other-class-count-checkpoint", _other_class_count, "classes"),
]


def _export(s: Scene, *extra: str) -> list[str]:
    return ["export", "--run", str(s.run), *extra]


EXPORT = [
    Case("opset-21", lambda s: _export(s, "--opset", "21"), "opset"),
    Case("opset-12", lambda s: _export(s, "--opset", "12"), "opset"),
    Case("batch-bounds-min-above-opt", lambda s: _export(s, "--min-batch", "8", "--opt-batch", "4"), "min"),
    Case("batch-bounds-zero", lambda s: _export(s, "--min-batch", "0"), "min"),
    Case("calib-samples-0", lambda s: _export(s, "--int8", "--calib-samples", "0"), "calib-samples"),
    Case("unknown-int8-format", lambda s: _export(s, "--int8", "--int8-format", "int4"), "int4"),
    Case("workspace-too-small", lambda s: _export(s, "--workspace-mb", "1"), "workspace"),
    Case("out-missing-folder", lambda s: _export(s, "--out", str(s.tmp / "nope")), "does not exist"),
    Case("out-under-a-file", lambda s: _export(s, "--out", str(_under_a_file(s))), "does not exist"),
    Case("unknown-model-name", lambda s: _export(s, "--model", "nope"), "nope"),
    Case("no-model-in-run", lambda s: ["export", "--run", str(s.copy_run(
        drop=("finetuned.safetensors", "pruned.safetensors")))], "no model"),
    Case("truncated-checkpoint", lambda s: _export(s), "safetensors",
         prepare=lambda s: truncate(s.run / "pruned.safetensors")),
    Case("random-bytes-checkpoint", lambda s: _export(s), "safetensors",
         prepare=lambda s: garble(s.run / "pruned.safetensors")),
    Case("checkpoint-metadata-says-other-arch", _meta_says_other_arch, "mobilenet_v2"),
    Case("missing-run", lambda s: ["export", "--run", str(s.tmp / "nope")], "does not exist"),
    Case("not-a-run", lambda s: ["export", "--run", str(_not_a_run(s))], "not a facompress run"),
    Case("no-finished-finetune", lambda s: ["export", "--run", str(_unfinished_run(s))], "model"),
]


def _bench(s: Scene, *extra: str) -> list[str]:
    return ["bench", "--run", str(s.run), "--runs", "2", "--warmup", "1", "--quiet", *extra]


BENCH = [
    Case("unknown-backend", lambda s: _bench(s, "--backend", "qux"), "qux"),
    Case("batch-sizes-0", lambda s: _bench(s, "--batch-sizes", "0"), "batch"),
    Case("batch-sizes-negative", lambda s: _bench(s, "--batch-sizes", "1,-8"), "batch"),
    Case("batch-sizes-not-numbers", lambda s: _bench(s, "--batch-sizes", "one,eight"), "batch-sizes"),
    Case("batch-sizes-empty", lambda s: _bench(s, "--batch-sizes", ","), "batch-sizes"),
    Case("runs-0", lambda s: _bench(s, "--runs", "0"), "runs"),
    Case("sessions-0", lambda s: _bench(s, "--sessions", "0"), "sessions"),
    Case("threads-0", lambda s: _bench(s, "--threads", "0"), "threads"),
    Case("eval-limit-0", lambda s: _bench(s, "--eval-limit", "0"), "eval-limit"),
    Case("img-size-3", lambda s: _bench(s, "--img-size", "3"), "img"),
    Case("unknown-memory-format", lambda s: _bench(s, "--memory-format", "nhwc"), "memory-format"),
    Case("truncated-onnx", lambda s: _bench(s), "pruned.onnx",
         prepare=lambda s: truncate(s.run / "pruned.onnx")),
    Case("random-bytes-onnx", lambda s: _bench(s), "pruned.onnx",
         prepare=lambda s: garble(s.run / "pruned.onnx")),
    Case("truncated-checkpoint", lambda s: _bench(s), "safetensors",
         prepare=lambda s: truncate(s.run / "pruned.safetensors")),
    Case("nothing-to-benchmark", lambda s: ["bench", "--run", str(_unfinished_run(s)), "--quiet"], "nothing"),
    Case("missing-run", lambda s: ["bench", "--run", str(s.tmp / "nope")], "does not exist"),
    Case("not-a-run", lambda s: ["bench", "--run", str(_not_a_run(s))], "not a facompress run"),
]

REPORT = [
    Case("no-report-json", lambda s: ["report", "--run", str(s.run)], "bench"),
    Case("report-json-not-json", lambda s: ["report", "--run", str(s.run)], "JSON",
         prepare=lambda s: (s.run / "report.json").write_text("{")),
    Case("report-json-not-a-report", lambda s: ["report", "--run", str(s.run)], "report",
         prepare=lambda s: (s.run / "report.json").write_text('{"artifacts": 3}')),
    Case("missing-run", lambda s: ["report", "--run", str(s.tmp / "nope")], "does not exist"),
    Case("not-a-run", lambda s: ["report", "--run", str(_not_a_run(s))], "not a facompress run"),
]


def _sweep(s: Scene, *extra: str) -> list[str]:
    return ["sweep", "--run", str(s.run), "--recover-epochs", "0", "--runs", "2", "--quiet", *extra]


SWEEP = [
    Case("keep-0", lambda s: _sweep(s, "--keep", "0.9,0"), "keep"),
    Case("keep-not-numbers", lambda s: _sweep(s, "--keep", "most"), "keep"),
    Case("unknown-importance", lambda s: _sweep(s, "--importance", "baz"), "importance"),
    Case("unknown-importance-in-list", lambda s: _sweep(s, "--importance", "gate,baz"), "baz"),
    Case("target-macs-1.2", lambda s: _sweep(s, "--target-macs", "0.5,1.2"), "target-macs"),
    Case("keep-and-target-macs", lambda s: _sweep(s, "--keep", "0.6", "--target-macs", "0.5"), "not both"),
    Case("batch-sizes-0", lambda s: _sweep(s, "--batch-sizes", "0"), "batch"),
    Case("batch-sizes-not-numbers", lambda s: _sweep(s, "--batch-sizes", "x"), "batch-sizes"),
    Case("runs-0", lambda s: _sweep(s, "--runs", "0"), "runs"),
    Case("recover-epochs-negative", lambda s: _sweep(s, "--recover-epochs", "-1"), "recover-epochs"),
    Case("gate-importance-on-ungated-run", lambda s: ["sweep", "--run", str(s.copy_run("ungated")), "--quiet"],
         "gates"),
    Case("missing-run", lambda s: ["sweep", "--run", str(s.tmp / "nope")], "does not exist"),
]

def _compress(s: Scene, recipe: str, *extra: str) -> list[str]:
    """`compress` with `recipe` as its file, into a new run folder (which must not appear)."""
    return ["compress", "--recipe", str(s.file("recipe.toml", recipe.encode())), "--run", str(s.tmp / "new"), *extra]


COMPRESS = [
    Case("unknown-section", lambda s: _compress(s, "[finetun]\nmodel = 'resnet18'\n"), "[finetun]"),
    Case("unknown-key", lambda s: _compress(s, "[prune]\nkepe = 0.5\n"), "kepe"),
    Case("wrong-type", lambda s: _compress(s, "[finetune]\nimg_size = 'big'\n"), "img_size must be a whole number"),
    Case("out-of-range", lambda s: _compress(s, "[prune]\ntarget_macs = 2.0\n"), "target_macs"),
    Case("two-budgets", lambda s: _compress(s, "[prune]\nkeep = 0.5\ntarget_macs = 0.5\n"), "one budget"),
    Case("not-toml", lambda s: _compress(s, "[prune\n"), "not valid TOML"),
    Case("missing-recipe", lambda s: ["compress", "--recipe", str(s.tmp / "nope.toml")], "does not exist"),
    Case("set-without-section", lambda s: ["compress", "--set", "img_size=32"], "SECTION.KEY=VALUE"),
    Case("shortcut-out-of-range", lambda s: ["compress", "--img-size", "5", "--run", str(s.tmp / "new")], "img_size"),
    Case("existing-run-folder", lambda s: ["compress", "--run", str(s.run)], "already holds a run"),
    Case("resume-not-a-compress-run", lambda s: ["compress", "--resume", "--run", str(s.run)], "facompress compress"),
    Case("resume-with-settings", lambda s: ["compress", "--resume", "--run", str(s.run), "--set", "prune.keep=0.4"],
         "--resume"),
]

OTHER = [
    Case("unknown-command", lambda s: ["frobnicate"], "frobnicate"),
    Case("env-unknown-option", lambda s: ["env", "--verbose"], "verbose"),
]

ALL = [(f"{group}-{c.id}", c) for group, cases in (
    ("finetune", FINETUNE), ("gates", GATES), ("prune", PRUNE), ("export", EXPORT), ("bench", BENCH),
    ("report", REPORT), ("compress", COMPRESS), ("sweep", SWEEP), ("cli", OTHER)) for c in cases]

SUBPROCESS = [
    Case("finetune-unknown-model", lambda s: ft(model="foo"), "model"),
    Case("bench-random-bytes-onnx", lambda s: _bench(s), "pruned.onnx",
         prepare=lambda s: garble(s.run / "pruned.onnx")),
]

READ_ONLY = [
    Case("finetune-run-in-read-only-folder", lambda s: ft("--run", str(s.tmp / "readonly" / "run")), "readonly"),
    Case("export-out-read-only-folder", lambda s: _export(s, "--out", str(s.tmp / "readonly")), "readonly"),
]
