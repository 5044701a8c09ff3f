"""A recipe: the settings of every stage of `facompress compress`, read from TOML, checked whole before
anything runs, with every default filled in, and written back as the run's `recipe.toml`.

>>> recipe = load_recipe(Path("examples/recipe.toml"), {"prune": {"target_macs": 0.35}})
>>> load_recipe().img_size_choice.describe()    # no file: every default, the size from the model and the data
'64: fashion-mnist declares 64 px for its 28-px images'
>>> Path("replay.toml").write_text(recipe.to_toml())     # loads back to the same recipe

A file has a table per stage (`[finetune]`, `[prune]`, `[export]`, `[bench]`, `[report]`), each optional;
its keys are the stage command's option names with underscores (sections.py). Bad input (an unknown
table or key, a wrong type, a value the stage would refuse) is one `ConfigError` line naming the file,
the key and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._deps import require
from ..data import ImgSizeChoice, choose_img_size
from ..errors import ConfigError, NotFoundError, UserError
from ..models import get_spec
from ..models import trust_code as trusting
from ._toml import dumps, value_text
from .sections import SECTIONS, Section

COMMAND_LINE = "command line"  # how messages name values that came from flags rather than a file
HEADER = (
    "facompress compress recipe: a table per stage; keys are the stage command's option names with",
    "underscores (facompress finetune --img-size -> img_size). Every default is filled in; a key shown as",
    "`# key: not set (...)` takes the default described. Replay: facompress compress --recipe THIS_FILE",
)


@dataclass(frozen=True)
class Recipe:
    """Every key of every stage (None: not set), checked; and the fine-tuning's input size with its reason."""

    values: Mapping[str, Mapping[str, Any]]
    img_size_choice: ImgSizeChoice
    source: str = field(default="defaults", compare=False)  # the file it was read from, for messages

    def section(self, name: str) -> dict[str, Any]:
        """A copy of one stage's values."""
        return dict(self.values[name])

    def to_toml(self) -> str:
        """The recipe as TOML text that `load_recipe` reads back to an equal recipe."""
        notes = {(s.name, k.name): k.unset for s in SECTIONS.values() for k in s.keys
                 if k.unset and self.values[s.name][k.name] is None}  # what a key left out means
        if self.img_size_choice.rule != "asked":  # the rule that chose a size the recipe did not give
            notes["finetune", "img_size"] = self.img_size_choice.reason
        return dumps(self.values, header=HEADER, notes=notes)

    def differences(self, other: Recipe) -> list[str]:
        """`[prune] keep: 0.5 vs 0.6` for every key whose value differs."""
        return [f"[{name}] {key}: {_shown(value)} vs {_shown(other.values[name][key])}"
                for name, values in self.values.items() for key, value in values.items()
                if other.values[name][key] != value]


def load_recipe(path: Path | None = None, overrides: Mapping[str, Mapping[str, Any]] | None = None, *,
                trust_code: bool = False) -> Recipe:
    """The recipe in TOML file `path` (None: all defaults) with `overrides` (section -> key -> value, e.g.
    from the command line) on top, checked and filled; `ConfigError` naming the file and key otherwise.
    `trust_code` allows importing a `file.py:factory` model to check it."""
    given: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    sources: dict[tuple[str, str], str] = {}
    for source, tables in ((str(path), read_toml(path)) if path is not None else (None, {}),
                           (COMMAND_LINE, overrides or {})):
        for name, values in _checked_shape(tables, source).items():
            given[name].update(values)
            sources.update({(name, key): source for key in values})
    for name, section in SECTIONS.items():
        _check_values(section, given[name], sources, trust_code)
    values = {name: {**section.defaults(), **given[name]} for name, section in SECTIONS.items()}
    ft = values["finetune"]
    with trusting(trust_code):
        choice = choose_img_size(ft["img_size"], get_spec(ft["model"]), ft["data"])
    ft["img_size"] = choice.size_px
    label = str(path) if path is not None else (COMMAND_LINE if overrides else "defaults")
    return Recipe(values, choice, source=label)


def _tomllib():
    """The standard library's TOML reader (Python 3.11+), else the `tomli` package it came from."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        return require("tomli", "reading a recipe on Python 3.10")
    return tomllib


def read_toml(path: Path) -> dict[str, Any]:
    """The tables of TOML file `path`; `NotFoundError` / `ConfigError` with the file's name otherwise."""
    tomllib = _tomllib()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"recipe {path} does not exist; pass the path of a TOML file "
                            f"(examples/recipe.toml is one)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"recipe {path} cannot be read as UTF-8 text ({exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def parse_setting(text: str) -> tuple[str, str, Any]:
    """`"prune.keep=0.5"` -> ("prune", "keep", 0.5): a TOML value, or the text itself when it is not one
    (`finetune.model=resnet18`). What `facompress compress --set` takes."""
    name, eq, raw = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not (eq and dot and section and key):
        raise ConfigError(f"--set takes SECTION.KEY=VALUE, e.g. prune.target_macs=0.5 (got {text!r})")
    tomllib = _tomllib()
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return section, key.strip(), value


def _checked_shape(tables: Mapping[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """Known sections holding known keys of the right type (values normalised: 1 -> 1.0 for a number)."""
    out: dict[str, dict[str, Any]] = {}
    for name, values in tables.items():
        section = SECTIONS.get(name)
        if section is None or not isinstance(values, Mapping):
            what = (f"key {name!r} outside a section" if not isinstance(values, Mapping)
                    else f"unknown section [{name}]")
            raise ConfigError(f"{source}: {what}; sections: {', '.join(f'[{s}]' for s in SECTIONS)}, each "
                              f"holding its command's options")
        out[name] = {key: _typed(section, key, value, source) for key, value in values.items()}
    return out


def _typed(section: Section, key: str, value: Any, source: str) -> Any:
    spec = section.key(key)
    if spec is None:
        hint = f" (keys use underscores: {key.replace('-', '_')})" if section.key(key.replace("-", "_")) else ""
        keys = ", ".join(k.name for k in section.keys) or "none: the stage has no option"
        raise ConfigError(f"{source}: unknown key {key!r} in [{section.name}]{hint}; keys: {keys}")
    if not spec.kind.accepts(value):
        raise ConfigError(f"{source}: [{section.name}] {key} must be {spec.kind.allowed} (got {_shown(value)}); "
                          f"leave it out for the default ({_default(spec)})")
    return spec.kind.normal(value)


def _check_values(section: Section, given: dict[str, Any], sources: Mapping[tuple[str, str], str],
                  trust: bool) -> None:
    """Each given key alone against the stage's own checks (so the message names it), then all together."""
    defaults = section.defaults()
    for key, value in given.items():
        try:
            section.check({**defaults, key: value}, trust)
        except UserError as exc:
            raise ConfigError(f"{sources[section.name, key]}: [{section.name}] {key} = {_shown(value)} is refused: "
                              f"{_one_line(exc)}") from None
    try:
        section.check({**defaults, **given}, trust)
    except UserError as exc:
        where = sorted({sources[section.name, k] for k in given}) or ["defaults"]
        raise ConfigError(f"{' and '.join(where)}: [{section.name}] {', '.join(given)} together are refused: "
                          f"{_one_line(exc)}") from None


def _default(key) -> str:  # noqa: ANN001 - a sections.Key
    return _shown(key.default) if key.default is not None else f"not set: {key.unset}"


def _shown(value: Any) -> str:
    return value_text(value) if value is not None else "not set"


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
