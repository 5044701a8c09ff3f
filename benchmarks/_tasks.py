"""The task zoo: compression tasks built from the real Fashion-MNIST images, each with its model and size.

A default tuned on three tasks is a guess about the fourth, so every task says what it may be used for:
`choose` tasks are the ones facompress's compression defaults were (and may be) chosen on; `held_out`
tasks only check those choices. At most half the zoo is `choose`.

    python -m benchmarks tasks          # the zoo as a table

Each task is a dataset of some Fashion-MNIST classes (relabelled 0..k-1 in the order given), a number
of training images per class, an image size and an EfficientNet-Lite with its real ImageNet weights.
Its splits, for a seed:

- validation: carved from the 60,000 training images the library's way (`carve_validation`: seeded,
  stratified, `val_fraction` of each class), so it never overlaps train or test;
- train: `train_per_class` images of each class from what the carve left;
- test: every test image of the chosen classes (1,000 per class), unless a caller caps it.

How train and validation are cut down to size (`pick`):

- `library`: exactly what `load_dataset(..., limit_train=k * train_per_class)` does on a dataset of
  those classes (`make_splits`): a class-balanced training subset, and the validation split cut by the
  same share, so it stays `val_fraction` of train + validation (about train_per_class / 9 a class at 0.1);
- `per-class`: the first tasks' pick (`tops4`, `shoes3`), kept so their stored rows repeat: a seeded
  random `train_per_class` of each class, and `round(train_per_class * f / (1 - f))` validation images
  of each class.

`default` is `facompress finetune`'s own data (all ten classes, `--limit-train 6000`, 64 px).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from fa_compress.data._split import Pool, carve_validation, make_splits
from fa_compress.data.fashion_mnist import CLASSES, _FILES, _find_file, _locate, read_idx, resize_uint8
from fa_compress.data.memory import InMemoryImageDataset
from fa_compress.errors import ConfigError
from fa_compress.models import Normalization

CHOOSE, HELD_OUT = "choose", "held_out"
ROLES = (CHOOSE, HELD_OUT)
PICKS = ("library", "per-class")
TOPS, SHOES, SHIRTS = (0, 2, 4, 6), (5, 7, 9), (0, 6)  # the look-alike groups: the classes Fashion-MNIST confuses
LITE0, LITE1, LITE2 = "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"
VAL_FRACTION = 0.1  # the library's default (fa_compress.data.DEFAULT_VAL_FRACTION)


@dataclass(frozen=True)
class Task:
    """A task: which Fashion-MNIST classes, how many training images of each, at what size, on which model."""

    name: str
    classes: tuple[int, ...]  # Fashion-MNIST labels, relabelled 0..k-1 in this order
    train_per_class: int      # training images per class (validation comes on top of them)
    img_size: int             # px
    model: str = LITE0        # a registered model with offline ImageNet weights
    role: str = HELD_OUT      # CHOOSE: defaults may be chosen on it; HELD_OUT: it only checks them
    pick: str = "library"     # how train and validation are cut to size (module docstring)
    varies: str = ""          # what the task adds to the zoo

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ConfigError(f"role must be one of {', '.join(ROLES)} (got {self.role!r})")
        if self.pick not in PICKS:
            raise ConfigError(f"pick must be one of {', '.join(PICKS)} (got {self.pick!r})")
        if not 2 <= len(self.classes) <= 10 or len(set(self.classes)) != len(self.classes) \
                or not set(self.classes) <= set(range(10)):
            raise ConfigError(f"classes must be 2 to 10 distinct labels in 0..9 (got {self.classes!r})")

    @property
    def class_names(self) -> list[str]:
        return [CLASSES[c] for c in self.classes]


ZOO = (
    # the three tasks the compression defaults were chosen on
    Task("default", tuple(range(10)), 600, 64, role=CHOOSE, varies="the CLI's default data"),
    Task("tops4", TOPS, 270, 48, role=CHOOSE, pick="per-class", varies="look-alike tops"),
    Task("shoes3", SHOES, 135, 80, role=CHOOSE, pick="per-class", varies="look-alike shoes, larger images"),
    # held out: only checked against
    Task("shirt2", SHIRTS, 30, 32, varies="the hardest pair, few images, smallest size"),
    Task("shirt2-1k", SHIRTS, 1000, 64, LITE1, varies="the hardest pair with plenty of images, Lite1"),
    Task("shoes3-few", SHOES, 30, 128, LITE2, varies="few images at the largest size, Lite2"),
    Task("tops4-1k", TOPS, 1000, 40, varies="look-alike tops with plenty of images, small size"),
    Task("mixed5", (1, 3, 5, 8, 9), 100, 96, LITE1, varies="easy mixed classes, Lite1"),
    Task("mixed3-few", (1, 7, 8), 30, 48, LITE1, varies="three distinct classes, few images, Lite1"),
    Task("all10-few", tuple(range(10)), 100, 112, LITE2, varies="all ten classes, few images, Lite2"),
)
TASKS = {t.name: t for t in ZOO}


def resolve(names: str | Sequence[str]) -> list[Task]:
    """Tasks by name ("a,b" or a list); `zoo`, `choose` and `held_out` stand for those groups."""
    names = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    groups = {"zoo": list(ZOO), CHOOSE: [t for t in ZOO if t.role == CHOOSE],
              HELD_OUT: [t for t in ZOO if t.role == HELD_OUT]}
    out: list[Task] = []
    for name in names:
        if name not in TASKS and name not in groups:
            raise ConfigError(f"task {name!r} is not in the zoo; known: {', '.join(TASKS)} "
                              f"(or a group: {', '.join(groups)})")
        out += groups.get(name) or [TASKS[name]]
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class TaskIndices:
    """Which Fashion-MNIST images make each split: indices into the 60,000 training images (train and
    validation) and into the 10,000 test images, with their relabelled classes."""

    train: torch.Tensor       # (N_train,) long, sorted
    val: torch.Tensor         # (N_val,) long, sorted
    test: torch.Tensor        # (N_test,) long, sorted
    train_labels: torch.Tensor  # (N_train,) long in 0..k-1
    val_labels: torch.Tensor
    test_labels: torch.Tensor


@dataclass(frozen=True)
class TaskData:
    train: InMemoryImageDataset
    val: InMemoryImageDataset
    test: InMemoryImageDataset
    classes: list[str]
    indices: TaskIndices


def _labels() -> tuple[torch.Tensor, torch.Tensor]:
    """The Fashion-MNIST labels: (60000,) training and (10000,) test, long."""
    folder, _ = _locate(None)
    out = []
    for split in ("train", "test"):
        out.append(torch.from_numpy(read_idx(_find_file(folder, _FILES[f"{split}_labels"]))).long())
    return out[0], out[1]


def _relabel(labels: torch.Tensor, classes: tuple[int, ...]) -> torch.Tensor:
    remap = torch.full((10,), -1, dtype=torch.long)
    remap[torch.tensor(classes)] = torch.arange(len(classes))
    return remap[labels]


def _library_pick(task: Task, train_labels: torch.Tensor, test_labels: torch.Tensor, seed: int,
                  val_fraction: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """make_splits on a dataset of the task's classes, with `limit_train = k * train_per_class`."""
    train_pool = torch.isin(train_labels, torch.tensor(task.classes)).nonzero().flatten()  # (M,)
    test_pool = torch.isin(test_labels, torch.tensor(task.classes)).nonzero().flatten()

    def pool(members: torch.Tensor, labels: torch.Tensor) -> Pool:
        """A pool of the task's images whose `view` hands back their Fashion-MNIST indices, not images."""
        def view(idx, _augment):
            return members[torch.tensor(idx, dtype=torch.long)]

        return Pool(_relabel(labels[members], task.classes), view)

    splits = make_splits(pool(train_pool, train_labels), pool(test_pool, test_labels), None,
                         classes=task.class_names, val_fraction=val_fraction,
                         limit_train=len(task.classes) * task.train_per_class, limit_test=None, seed=seed)
    return splits.train, splits.val, splits.test


def _per_class_pick(task: Task, train_labels: torch.Tensor, test_labels: torch.Tensor, seed: int,
                    val_fraction: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The carve over all ten classes, then a seeded random `n` of each chosen class (the first tasks' pick)."""
    train_idx, val_idx = carve_validation(train_labels, val_fraction, seed=seed, classes=CLASSES)
    n_val = max(1, round(task.train_per_class * val_fraction / (1 - val_fraction)))

    def pick(indices: torch.Tensor, labels: torch.Tensor, n: int | None) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        keep = []
        for c in task.classes:
            members = indices[(labels[indices] == c).nonzero().flatten()]  # (n_c,)
            keep.append(members[torch.randperm(members.numel(), generator=g)][:n] if n else members)
        return torch.cat(keep).sort().values

    return (pick(train_idx, train_labels, task.train_per_class), pick(val_idx, train_labels, n_val),
            pick(torch.arange(test_labels.numel()), test_labels, None))


def task_indices(task: Task, seed: int = 0, val_fraction: float = VAL_FRACTION) -> TaskIndices:
    """The task's three splits as image indices (cheap: no image is read)."""
    train_labels, test_labels = _labels()
    picker = _library_pick if task.pick == "library" else _per_class_pick
    train, val, test = (torch.as_tensor(s, dtype=torch.long).sort().values
                        for s in picker(task, train_labels, test_labels, seed, val_fraction))
    return TaskIndices(train, val, test, _relabel(train_labels[train], task.classes),
                       _relabel(train_labels[val], task.classes), _relabel(test_labels[test], task.classes))


def cap_per_class(indices: torch.Tensor, labels: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `n` of each class (indices sorted): a smaller test split for smoke runs."""
    keep = torch.cat([(labels == c).nonzero().flatten()[:n] for c in labels.unique()]).sort().values  # (<= k*n,)
    return indices[keep], labels[keep]


def load_task(task: Task, normalization: Normalization, seed: int = 0, val_fraction: float = VAL_FRACTION,
              test_per_class: int | None = None) -> TaskData:
    """The task's train / validation / test datasets, in memory at the task's size (only their images are
    resized); `test_per_class` caps the test split (None: all of it)."""
    ix = task_indices(task, seed, val_fraction)
    test, test_labels = (ix.test, ix.test_labels) if test_per_class is None else \
        cap_per_class(ix.test, ix.test_labels, test_per_class)
    ix = TaskIndices(ix.train, ix.val, test, ix.train_labels, ix.val_labels, test_labels)
    folder, _ = _locate(None)
    images = {s: torch.from_numpy(read_idx(_find_file(folder, _FILES[f"{s}_images"]))) for s in ("train", "test")}

    def view(split: str, idx: torch.Tensor, labels: torch.Tensor, flip: bool) -> InMemoryImageDataset:
        resized = resize_uint8(images[split][idx].unsqueeze(1), task.img_size)  # (n, 28, 28) -> (n, 1, S, S)
        return InMemoryImageDataset(resized, labels, normalization, flip=flip)

    return TaskData(view("train", ix.train, ix.train_labels, True), view("train", ix.val, ix.val_labels, False),
                    view("test", ix.test, ix.test_labels, False), task.class_names, ix)


def table(tasks: Sequence[Task] = ZOO, seed: int = 0) -> str:
    """The zoo as a Markdown table: name, classes, train / validation / test images, px, model, role."""
    lines = ["| task | classes | train | val | test | px | model | role | varies |",
             "|---|---|---:|---:|---:|---:|---|---|---|"]
    for t in tasks:
        ix = task_indices(t, seed)
        classes = "all 10" if len(t.classes) == 10 else ", ".join(t.class_names)
        lines.append(f"| {t.name} | {classes} | {ix.train.numel()} ({t.train_per_class}/class) | {ix.val.numel()} | "
                     f"{ix.test.numel()} | {t.img_size} | {t.model} | {t.role} | {t.varies} |")
    chose = ", ".join(t.name for t in tasks if t.role == CHOOSE)
    return "\n".join(lines) + f"\n\nDefaults chosen on: {chose}; every other task is held out.\n"
