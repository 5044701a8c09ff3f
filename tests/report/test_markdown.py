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


def test_headline_uses_the_fastest_smallest_batch_and_ratios_to_the_first(report):
    table = headline_table(report)
    assert table.rows[0][-1] == "1.00×" and table.rows[1][-1] == "0.50×"
    assert table.rows[2][4] == "—"  # nothing measured
    assert headline_latency(report.artifacts[0]).batch_size == 1
    assert len(latency_table(report).rows) == 3
