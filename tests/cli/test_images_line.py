"""Every command that reads images ends with how many it read per split and how many it skipped, and
why: finetune, prune, export (parity and calibration images) and bench, on a folder with damaged files."""

import numpy as np
from PIL import Image

from tests.cli.cli_output import cli_output
from tests.data.test_skipped import write_damaged_images

EXPECTED = "skipped 4 of 84 image files: 1 empty file, 1 not an image, 1 too many pixels, 1 truncated or damaged"


def test_each_command_reports_the_skipped_images(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "img" / c).mkdir(parents=True)
        for i in range(40):
            Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(tmp_path / "img" / c / f"{i}.png")
    write_damaged_images(tmp_path / "img" / "a")
    run = str(tmp_path / "run")
    commands = {
        "finetune": ["finetune", "--model", "resnet18", "--weights", "none", "--data", f"imagefolder:{tmp_path / 'img'}",
                     "--img-size", "16", "--schedule", "head", "--run", run, "--quiet"],
        "prune": ["prune", "--run", run, "--keep", "0.5", "--importance", "l1", "--recover-epochs", "0", "--quiet"],
        "export": ["export", "--run", run],
        "bench": ["bench", "--run", run, "--backend", "torch-cpu", "--batch-sizes", "1", "--runs", "2",
                  "--warmup", "1", "--quiet"],
    }
    for name, argv in commands.items():
        last = cli_output(argv, capsys).strip().splitlines()[-1]
        assert last.startswith(f"images: imagefolder:{tmp_path / 'img'} train "), (name, last)
        assert EXPECTED in last, (name, last)
