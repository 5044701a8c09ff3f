"""Quick check: Lite0 accuracy right after keep-0.6 pruning, per criterion/scope, before and after
BatchNorm re-estimation (no recovery training).

    .venv/bin/python benchmarks/prune_collapse_check.py runs/<default lite0 run>
"""
import copy, sys, torch
from torch.utils.data import DataLoader
from fa_compress.run import Run
from fa_compress.run_data import dataset_of_run
from fa_compress.models import get_head
from fa_compress.prune.pruner import PruneSettings, prune_model
from fa_compress.prune.recover import recalibrate_batchnorm
from fa_compress.train.loop import evaluate
from fa_compress.train.distributed import Context
run = Run.open(sys.argv[1]); dense, meta = run.load_model("finetuned")
b = dataset_of_run(run, limit_test=1000); test = DataLoader(b.test, batch_size=250); ctx = Context(torch.device("cpu"))
for kw in [dict(scope="global"), dict(scope="layer"), dict(scope="global", gate_reduction="max"), dict(scope="global", importance="l1"), dict(scope="layer", importance="l1")]:
    m = copy.deepcopy(dense)
    prune_model(m, get_head(m, "efficientnet_lite0"), PruneSettings(keep=0.6, **kw), torch.zeros(1,3,64,64))
    a = evaluate(m, test, ctx); recalibrate_batchnorm(m, b.train, ctx); a2 = evaluate(m, test, ctx)
    print(kw, f"after prune {a:.4f}  after BN re-estimation {a2:.4f}", flush=True)
