from dataclasses import replace

from fa_compress.bench.results import AccuracyDiff, ArtifactResult, BenchReport, LatencyResult
from fa_compress.bench.stats import RatioStats
from fa_compress.report import render_markdown
from fa_compress.report.tables import diff_cell, headline_latency, headline_table, latency_table, ratio_cell


def test_markdown_regenerates_identically_from_stored_json(report):
    text = render_markdown(report, ["report_size_macs.png"])
    again = render_markdown(BenchReport.from_json(report.to_json()), ["report_size_macs.png"])
    assert again == text


def test_markdown_holds_the_tables_and_reasons(report):
    text = render_markdown(report)
    assert text.startswith("# facompress benchmark — r1\n")
    assert "| finetuned | torch-cpu | 1 | 10.000 | 12.500 | 100.0 | 30 | 1 (dense) | finetuned |" in text
    assert "| pruned | torch-cpu | 1 | 5.000 | 6.000 | 200.0 | 30 | 0.50× [0.48, 0.53] | finetuned |" in text
    assert "| tensorrt | all | tensorrt is not importable \\| here |" in text  # pipes escaped
    assert "| ort-cpu | model.int8.onnx | load failed: boom |" in text
    assert "| model.int8.onnx | onnx | 4.60 | — | — | — | — | 0 | — | pruned | — |" in text
    assert "| CPU vector extensions | avx2, avx512_vnni |" in text
    assert "| load average 1/5/15 min, before | 1.00 / 0.50 / 0.25 |" in text
    assert "OMP_NUM_THREADS=2" in text
    assert "- a note" in text and "## Plots" not in text


def test_the_headline_comes_first_then_the_noise_warning(report):
    text = render_markdown(report)
    headline, warning = text.index("## Headline"), text.index("**Too noisy for a figure:**")
    assert headline < warning < text.index("## Artifacts")
    assert "pruned on torch-cpu at batch 8: latency 0.60–1.10× finetuned (±31%, 30 rounds)" in text


def test_headline_shows_intervals_n_and_paired_differences(report):
    table = headline_table(report)
    dense, pruned, onnx = table.rows
    assert dense[1:4] == ("91.25 [89.92, 92.42]", "2000", "ref")
    assert pruned[1:4] == ("90.50 [89.16, 91.72]", "2000", "-0.75 (significant, p=0.017)")
    assert pruned[-2:] == ("0.50× [0.48, 0.53]", "noisy: 0.60–1.10×")  # no point figure for a noisy ratio
    assert dense[-2:] == ("1 (dense)", "1 (dense)")
    assert onnx[7] == "—"  # nothing measured
    assert headline_latency(report.artifacts[0]).batch_size == 1
    assert len(latency_table(report).rows) == 4


def test_one_ratio_convention_latency_over_dense():
    """The headline and the latency table print the same cell for the same measurement."""
    r = LatencyResult("ort-cpu", 8, 3.0, 3.3, 3.1, 2.9, 30, 2666.0, reference="finetuned.onnx",
                      ratio=RatioStats(0.75, 0.72, 0.78, 30, False))
    assert ratio_cell(r) == "0.75× [0.72, 0.78]"
    assert ratio_cell(replace(r, reference=None, ratio=None)) == "—"  # no dense artifact in the same rounds


def test_a_difference_within_noise_is_marked():
    a = ArtifactResult("pruned", "torch", "p", 1.0, 1, 1, 80.0, None, 300,
                       accuracy_vs=(AccuracyDiff("finetuned", -0.33, 4, 5, 300, 1.0, True),))
    assert diff_cell(a, "finetuned") == "-0.33 (noise, p=1)"
    assert diff_cell(a, "other") == "—"
