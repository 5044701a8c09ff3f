"""`facompress compress`: the whole chain (finetune -> prune -> export -> bench -> report) in one run
directory, from a recipe TOML and/or flags; `--resume` continues a run at its first unfinished stage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ._common import user_errors_exit_2

# the shortcut flags and the recipe keys they set (every other key: --set SECTION.KEY=VALUE)
SHORTCUTS = {"model": ("finetune", "model"), "data": ("finetune", "data"), "size": ("finetune", "img_size"),
             "macs": ("prune", "target_macs")}


@user_errors_exit_2
def compress(
    recipe: Annotated[Optional[Path], typer.Option(rich_help_panel="Recipe", help="Recipe TOML: a table per stage (finetune, prune, export, bench, report) whose keys are that command's option names with underscores (img_size, target_macs); a key left out takes its default. examples/recipe.toml is one; a run's recipe.toml replays it.")] = None,
    settings: Annotated[Optional[list[str]], typer.Option("--set", rich_help_panel="Recipe", help="SECTION.KEY=VALUE on top of the recipe, repeatable: --set prune.target_macs=0.5 --set 'bench.backend=[\"ort-cpu\"]'.")] = None,
    model: Annotated[Optional[str], typer.Option(rich_help_panel="Shortcuts", help="The same as --set finetune.model=NAME.")] = None,
    data: Annotated[Optional[str], typer.Option(rich_help_panel="Shortcuts", help="The same as --set finetune.data=SPEC.")] = None,
    size: Annotated[Optional[int], typer.Option("--img-size", rich_help_panel="Shortcuts", help="The same as --set finetune.img_size=N.")] = None,
    macs: Annotated[Optional[float], typer.Option("--target-macs", rich_help_panel="Shortcuts", help="The same as --set prune.target_macs=F.")] = None,
    run: Annotated[Optional[Path], typer.Option(rich_help_panel="Run", help="Run directory to create (default: runs/<time>-<model>-<data>); with --resume the run to continue (default: the latest).")] = None,
    resume: Annotated[bool, typer.Option(rich_help_panel="Run", help="Continue --run at its first unfinished stage, with the run's own recipe.toml.")] = False,
    quiet: Annotated[bool, typer.Option(rich_help_panel="Run", help="No progress bars.")] = False,
    trust_code: Annotated[bool, typer.Option(rich_help_panel="Run", help="Allow a model from user code (finetune.model = file.py:factory): imports and runs it.")] = False,
) -> None:
    """Fine-tune, prune, export, benchmark and report in one run, as a recipe and the flags say."""
    from fa_compress.errors import ConfigError
    from fa_compress.recipe import compress as run_chain
    from fa_compress.recipe import load_recipe, parse_setting
    from fa_compress.report import load_report

    from ._headline import print_headline

    overrides: dict[str, dict[str, Any]] = {}
    for text in settings or ():
        section, key, value = parse_setting(text)
        overrides.setdefault(section, {})[key] = value
    for name, value in (("model", model), ("data", data), ("size", size), ("macs", macs)):
        if value is not None:
            section, key = SHORTCUTS[name]
            overrides.setdefault(section, {})[key] = value
    if resume and overrides:
        raise ConfigError("--resume continues the run's own recipe.toml, which --set and the shortcut flags would "
                          "change; start a new run from it instead: --recipe RUN/recipe.toml --set ...")
    asked = None
    if recipe is not None or not resume:  # everything is checked here, before a stage runs
        asked = load_recipe(recipe, overrides, trust_code=trust_code)
    if asked is not None and not resume:
        typer.echo(f"img size {asked.img_size_choice.describe()}")
    result = run_chain(asked, run=run, resume=resume, show_progress=not quiet, trust_code=trust_code)
    typer.echo(f"run: {result.run_path}\nrecipe: {result.recipe_path}")
    typer.echo(f"{'stage':<9} {'status':<12} {'time':>7}  result")
    for s in result.stages:
        typer.echo(f"{s.stage:<9} {s.status:<12} {s.seconds:>6.0f}s  {s.summary}")
    print_headline(load_report(result.run_path), result.run_path)
