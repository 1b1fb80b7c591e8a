"""Report: Pareto fronts, charts and the comparison table from a results folder; the CLI end to end."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from evals.cli import main, read_variants
from evals.report import charts, comparison_table, pareto_front, variant_points
from evals.results import ResultLog, list_runs, load_results
from g3n_core import Variant

pytestmark = pytest.mark.usefixtures("single_thread")


def _row(variant, task, metric, value, status="ok"):
    return {"variant": variant, "variant_json": "{}", "task": task, "metric": metric, "value": value, "n": 10, "stderr": 0.01,
            "unit": "", "kind": "", "higher_is_better": not metric.startswith("peak"), "wall_s": 1.0, "status": status, "note": "", "limit": None,
            "unit_id": f"{variant}|{task}", "unit_size": 1, "finished_at": ""}  # fmt: skip


def _frame() -> pd.DataFrame:
    # (accuracy, decode tokens/s, peak memory bytes): "slow" is dominated on speed, "big" on memory
    specs = {"fast": (0.5, 90.0, 200e6), "accurate": (0.8, 40.0, 300e6), "slow": (0.4, 30.0, 100e6), "big": (0.45, 35.0, 900e6)}
    rows = []
    for name, (acc, speed, memory) in specs.items():
        rows += [_row(name, "mc", "acc", acc), _row(name, "qa", "exact_match", acc), _row(name, "measure:latency", "decode_tokens_per_s_median", speed),
                 _row(name, "measure:memory", "peak_memory_bytes", memory), _row(name, "measure:sparsity", "layer_00", 0.95)]  # fmt: skip
    rows.append(_row("text-only", "vqa", "exact_match", None, status="skipped"))
    return pd.DataFrame(rows)


def test_pareto_fronts_and_charts():
    points = variant_points(_frame()).set_index("variant")
    assert points.loc["accurate", "accuracy"] == pytest.approx(0.8) and points.loc["fast", "tasks"] == 2
    speed_front = pareto_front(points.reset_index(), "decode_tokens_per_s", "accuracy", True)
    assert dict(zip(points.index, speed_front)) == {"accurate": True, "big": False, "fast": True, "slow": False}
    memory_front = pareto_front(points.reset_index(), "peak_memory_mib", "accuracy", False)
    assert dict(zip(points.index, memory_front)) == {"accurate": True, "big": False, "fast": True, "slow": True}
    figures = charts(_frame())
    assert set(figures) == {"accuracy_vs_decode", "accuracy_vs_memory", "prefill", "decode", "time_to_first_token", "memory", "sparsity"}
    points_trace, front = figures["accuracy_vs_decode"].data[:2]
    assert front.name == "Pareto front" and sorted(front.text or front.x) == sorted([40.0, 90.0])
    assert tuple(figures["accuracy_vs_decode"].layout.yaxis.range) == (0, 1.05)  # accuracy from 0 to 1
    # 95% error bars: two tasks with stderr 0.01 each -> 1.96 * sqrt(2 * 0.01^2) / 2
    assert points_trace.error_y.array[0] == pytest.approx(1.959964 * (2 * 0.01**2) ** 0.5 / 2)
    marked = charts(_frame(), {"accuracy_vs_decode": {"slow"}})["accuracy_vs_decode"].data
    assert marked[-1].name == "not significantly less accurate than the front" and list(marked[-1].x) == [30.0]
    table = comparison_table(_frame())
    assert table.loc["text-only", "vqa exact_match ↑"] == "skipped" and table.loc["fast", "mc acc ↑"] == "0.500 ± 0.010"
    assert table.loc["fast", "peak memory MiB ↓"] == "190.7" and table.loc["fast", "decode tokens/s ↑"] == "90.0"


def test_cli_run_report_list(tmp_path, capsys):
    variants_file = tmp_path / "variants.jsonl"
    variants_file.write_text(json.dumps(Variant(towers=()).to_dict()) + "\n")
    assert read_variants([str(variants_file), "tiny attn=eager towers=text"]) == [Variant(towers=()), Variant(attn="eager", towers=())]
    out = tmp_path / "run"
    assert main(["run", "--variants", str(variants_file), "--tasks", "builtin_mc", "--limit", "1", "--measure", "sparsity", "--out", str(out)]) == 0
    assert "builtin_mc acc ↑" in capsys.readouterr().out
    assert main(["report", str(out)]) == 0
    assert (out / "charts" / "accuracy_vs_decode.html").is_file() and (out / "charts" / "sparsity.html").is_file()
    assert (out / "verdict.md").is_file() and (out / "manifest.json").is_file()
    assert "nothing to compare" in capsys.readouterr().out  # one variant
    assert list_runs(tmp_path)[0]["name"] == "run" and len(load_results(out)) == 15 + 2  # sparsity per layer, acc and acc_norm
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ("builtin_image_qa", "builtin_speech_asr", "arc_challenge", "mmlu", "fleurs_asr", "latency"))
    assert main(["run", "--variants", "tiny", "--tasks", "nope", "--out", str(out)]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err


def test_half_written_last_line_is_dropped(tmp_path):
    log = ResultLog(tmp_path)
    log.append(_row("a", "mc", "acc", 0.5))
    with open(log.path, "a") as file:
        file.write('{"variant": "a", "task": "mc", "met')  # killed during a write
    assert len(ResultLog(tmp_path).rows()) == 1
