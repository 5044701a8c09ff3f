"""Property: whatever one mutation does to a finished run's model file, safetensors header, model
metadata, manifest, ONNX file or gate ranking, every loader either loads what facompress wrote or
refuses with the project's `UserError`: never another exception, never a silent load of changed bytes.

The mutations are drawn by hypothesis (flipped bytes, truncation, wrong header lengths, wrong types,
deleted and unknown fields, hostile paths); the longer run is `benchmarks/fuzz_runs.py`.
"""

from __future__ import annotations

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.run.fuzz_harness import OPS, TARGETS, Mutation, Original, try_mutation  # noqa: E402


def mutations(target: str) -> st.SearchStrategy[Mutation]:
    return st.builds(Mutation, target=st.just(target), op=st.sampled_from(OPS[target]),
                     where=st.floats(0, 1, exclude_max=True), count=st.integers(1, 8), pick=st.integers(0, 10_000))


@pytest.fixture(scope="module")
def fuzz_run(finished_run_base, tmp_path_factory):
    """One private copy for the whole module: each mutation is undone after its loaders ran."""
    import shutil

    path = shutil.copytree(finished_run_base, tmp_path_factory.mktemp("fuzz") / "run")
    return path, Original.of(path)


@pytest.mark.parametrize("target", TARGETS)
def test_every_loader_verifies_or_refuses(target, fuzz_run):
    run_dir, original = fuzz_run

    @settings(max_examples=7, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(mutations(target))
    def prop(m: Mutation) -> None:
        outcomes = try_mutation(run_dir, original, m)
        bad = [o for o in outcomes if o.outcome in ("other", "silent")]
        assert not bad, f"{m.describe()}: {bad}"
        assert len(outcomes) == 9

    prop()
    assert original.changed(run_dir) == set()  # every mutation was undone


def test_flipped_data_bytes_are_refused_by_every_model_loader(fuzz_run):
    """The case issue 13 reported: 8 flipped bytes in the tensor data loaded silently, every time."""
    run_dir, original = fuzz_run
    outcomes = {o.loader: o for o in try_mutation(run_dir, original, Mutation("model", "flip", 0.5, 8, 3))}
    for loader in ("Run.load_model", "load_model(file)", "check_run"):
        assert outcomes[loader].outcome in ("refused", "verified"), outcomes[loader]
    assert outcomes["Run.load_model"].outcome == "refused"
    assert "finetune" in outcomes["Run.load_model"].detail
    assert outcomes["load_model(file)"].outcome == "refused"
    assert "self-check" in outcomes["load_model(file)"].detail


# Mutations benchmarks/fuzz_runs.py once found raising something else (a structure entry's `kind` of
# another type reached `kind not in _COUNTS`: TypeError, unhashable); replayed every time.
FOUND = [Mutation("meta", "wrong_type", 0.2898, 1, 2300), Mutation("meta", "wrong_type", 0.0775, 7, 3706)]


@pytest.mark.parametrize("m", FOUND, ids=[m.describe() for m in FOUND])
def test_replayed_findings(m, fuzz_run):
    run_dir, original = fuzz_run
    outcomes = {o.loader: o for o in try_mutation(run_dir, original, m)}
    assert outcomes["load_model(file)"].outcome == "refused", outcomes["load_model(file)"]
    assert "metadata.structure" in outcomes["load_model(file)"].detail
    assert not [o for o in outcomes.values() if o.outcome in ("other", "silent")]


def test_unknown_fields_load(fuzz_run):
    """A field the schema does not know is kept, never an error."""
    run_dir, original = fuzz_run
    # `where` 0.0 picks the manifest's first field ("format"): the unknown field goes to the top level
    outcomes = try_mutation(run_dir, original, Mutation("manifest", "add_unknown", 0.0, 1, 7))
    assert {o.loader: o.outcome for o in outcomes}["Run.load_model"] == "verified", outcomes
