import pytest

from fa_compress.report import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = path.read_bytes()
    assert len(data) > 1000
    assert data[:8] == PNG_SIGNATURE


def test_pareto_and_size_plots_are_pngs(report, tmp_path):
    assert_png(plots.plot_pareto(report, tmp_path / "pareto.png"))
    assert_png(plots.plot_size_macs(report, tmp_path / "size.png"))


def test_gate_histograms_and_channels_are_pngs(tmp_path):
    gates = {"stride 2": [0.0, 0.5, 1.0, 1.2] * 8, "stride 4": [1.0] * 10, "empty": []}
    assert_png(plots.plot_gate_histograms(gates, tmp_path / "gates.png"))
    before = {f"layer{i}.conv": 64 for i in range(70)}
    after = {name: 40 for name in before}
    assert_png(plots.plot_channels(before, after, tmp_path / "channels.png"))


def test_nothing_to_draw_gives_none(report, tmp_path):
    from dataclasses import replace

    no_accuracy = replace(report, artifacts=tuple(replace(a, top1_pct=None) for a in report.artifacts))
    assert plots.plot_pareto(no_accuracy, tmp_path / "p.png") is None
    assert plots.plot_gate_histograms({}, tmp_path / "g.png") is None
    assert plots.plot_channels({}, {}, tmp_path / "c.png") is None
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("points, front", [
    ([(1.0, 80.0), (2.0, 90.0), (3.0, 85.0), (0.5, 70.0)], [(0.5, 70.0), (1.0, 80.0), (2.0, 90.0)]),
    ([(1.0, 80.0), (1.0, 85.0)], [(1.0, 85.0)]),
])
def test_pareto_front(points, front):
    assert plots.pareto_front(points) == front
