"""`facompress models`: every model name, whether it works, its ImageNet weights, normalisation and size."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ._common import user_errors_exit_2


@user_errors_exit_2
def models(
    supported_only: Annotated[bool, typer.Option(help="Only the models facompress can gate and prune.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list instead of the table.")] = False,
) -> None:
    """List the packaged and torchvision models; timm:NAME and file.py:factory work too (not listed)."""
    from fa_compress.models.catalog import model_catalog

    rows = [r for r in model_catalog() if r.supported or not supported_only]
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in rows], indent=1))
        return
    typer.echo(f"{'model':<22} {'status':<9} {'ImageNet weights':<34} {'px':>4} {'min':>4}  mean / std")
    for r in rows:
        status = "ok" if r.supported else "refused"
        weights = ("offline: " if r.imagenet_offline else "") + r.weights_from
        norm = f"{_three(r.normalization.mean)} / {_three(r.normalization.std)}"
        typer.echo(f"{r.name:<22} {status:<9} {weights:<34} {r.default_img_size:>4} {r.min_img_size:>4}  {norm}")
        if r.reason:
            typer.echo(f"{'':<22}   {r.reason}")
    ok = sum(r.supported for r in rows)
    offline = sum(r.imagenet_offline for r in rows if r.supported)
    typer.echo(f"{ok} models work ({offline} with ImageNet weights offline here); also timm:NAME (pip install "
               f"'facompress[timm]') and path/to/file.py:factory (with --trust-code)")


def _three(values: tuple[float, ...]) -> str:
    return ",".join(f"{v:.3g}" for v in values)
