"""The whole chain in one call: finetune -> prune -> export -> bench -> report, from a recipe.

`recipe.py` reads, checks and writes a recipe (TOML, a table per stage), `sections.py` is the table of
each stage's keys and how they become its options, `chain.py` runs the stages in one run directory.

>>> from fa_compress.recipe import compress, load_recipe
>>> result = compress(load_recipe(Path("examples/recipe.toml")))
>>> load_recipe(result.recipe_path)      # the effective recipe, every default filled in: replay it
"""

from .chain import RECIPE_FILE, STAGES, CompressResult, StageOutcome, compress
from .recipe import Recipe, load_recipe, parse_setting
from .sections import SECTIONS

__all__ = ["RECIPE_FILE", "SECTIONS", "STAGES", "CompressResult", "Recipe", "StageOutcome", "compress",
           "load_recipe", "parse_setting"]
