from fa_compress.bench.results import BenchReport
from fa_compress.report import render_markdown
from fa_compress.report.tables import headline_latency, headline_table, latency_table


def test_markdown_regenerates_identically_from_stored_json(report):
    text = render_markdown(report, ["report_size_macs.png"])
    again = render_markdown(BenchReport.from_json(report.to_json()), ["report_size_macs.png"])
    assert again == text


def test_markdown_holds_the_tables_and_reasons(report):
    text = render_markdown(report)
    assert text.startswith("# facompress benchmark — r1\n")
    assert "| finetuned | torch-cpu | 1 | 10.000 | 12.500 | 100.0 | 30 | 1.00× vs finetuned |" in text
    assert "| pruned | torch-cpu | 1 | 5.000 | 6.000 | 200.0 | 30 | 2.00× vs finetuned |" in text
    assert "| tensorrt | all | tensorrt is not importable \\| here |" in text  # pipes escaped
    assert "| ort-cpu | model.int8.onnx | load failed: boom |" in text
    assert "| model.int8.onnx | onnx | 4.60 | — | — | — | — | 0 | pruned |" in text
    assert "- a note" in text and "## Plots" not in text


def test_headline_uses_the_fastest_smallest_batch_and_ratios_to_the_densest_on_that_backend(report):
    table = headline_table(report)
    assert table.rows[0][-1] == "1.00×" and table.rows[1][-1] == "0.50×"
    assert table.rows[2][4] == "—"  # nothing measured
    assert headline_latency(report.artifacts[0]).batch_size == 1
    assert len(latency_table(report).rows) == 3


def test_headline_ratio_never_compares_across_backends(report):
    """A pruned ONNX on onnxruntime is compared with the dense ONNX there, not with dense eager PyTorch."""
    from dataclasses import replace

    from fa_compress.bench.results import ArtifactResult, LatencyResult

    dense_onnx = ArtifactResult("finetuned.onnx", "onnx", "finetuned.onnx", 44.0, None, 1_800_000_000, 91.25, None,
                                2000, (LatencyResult("ort-cpu", 1, 4.0, 4.4, 4.1, 3.9, 30, 250.0),), source="finetuned")
    pruned_onnx = ArtifactResult("pruned.onnx", "onnx", "pruned.onnx", 18.0, None, 700_000_000, 90.5, None,
                                 2000, (LatencyResult("ort-cpu", 1, 1.0, 1.2, 1.1, 0.9, 30, 1000.0),), source="pruned")
    alone = replace(report, artifacts=(*report.artifacts, pruned_onnx))
    assert headline_table(alone).rows[-1][-1] == "—"  # no dense model measured on ort-cpu
    both = replace(report, artifacts=(*report.artifacts, pruned_onnx, dense_onnx))
    rows = {r[0]: r for r in headline_table(both).rows}
    assert rows["pruned.onnx"][-1] == "0.25×"
    assert rows["finetuned.onnx"][-1] == "1.00×"
