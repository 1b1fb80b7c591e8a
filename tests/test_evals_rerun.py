"""Three tiny variants over the built-in suites from the command line: report prints verdicts, the run folder
holds verdict.md and manifest.json, diff lists the differing examples, rerun reproduces the accuracy exactly."""

from __future__ import annotations

import json
import re

import pytest

from evals.cli import main
from evals.manifest import cpu_info, read_manifest
from g3n_core.errors import EvalError

pytestmark = pytest.mark.usefixtures("single_thread")
VARIANTS = ["tiny attn=eager", "tiny attn=sdpa sparsity=off", "tiny matformer=ffn=256*15"]
QUICK = ["--limit", "2", "--measure", "latency", "--prompt-tokens", "16", "--new-tokens", "4", "--repeats", "3", "--threads", "1"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("verdict") / "three"
    assert main(["run", "--variants", *VARIANTS, "--tasks", "builtin", *QUICK, "--out", str(out)]) == 0
    return out


def test_report_prints_verdicts_and_writes_verdict_and_manifest(run_dir, capsys):
    capsys.readouterr()
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if " vs tiny eager fp32: " in line]
    assert len(lines) == 2  # one per variant against the baseline (the first)
    for line in lines:
        assert re.search(r"decode x\d+\.\d\d \(\d+\.\d\d-\d+\.\d\d\)", line)  # ratio of medians with its interval
        assert "builtin_mc acc (n=2" in line and "[Holm-adjusted over 5 tasks]" in line
    assert re.search(r"95% CI -?\d", out) and re.search(r"p[=<]\d", out)
    verdict = (run_dir / "verdict.md").read_text()
    assert all(line in verdict for line in lines) and "## Every test" in verdict and "commit " in verdict
    manifest = read_manifest(run_dir)
    assert manifest["request"]["tasks"] == ["builtin_mc", "builtin_short_answer", "builtin_image_qa", "builtin_speech_asr", "builtin_speech_translation"]
    assert [v["name"] for v in manifest["variants"]] == ["tiny eager fp32", "tiny sdpa fp32 sp:off", lines[1].split(" vs ")[0]]
    assert manifest["versions"]["packages"]["torch"]["installed"] == manifest["versions"]["packages"]["torch"]["pinned"]
    assert manifest["machine"]["torch_threads"] == 1 and manifest["machine"]["cpu"]["vector_features"] == cpu_info()["vector_features"]
    mc = manifest["tasks"]["builtin_mc"]
    assert mc["examples"] == 2 and set(mc["files"]) == {"text_mc.jsonl", "text_mc_fewshot.jsonl"} and len(mc["data_sha256"]) == 64
    assert any(name.startswith("images/") for name in manifest["tasks"]["builtin_image_qa"]["files"])  # media hashed too
    assert "--threads 1" in manifest["command"] and manifest["seeds"]["run"] == 0
    assert main(["report", str(run_dir), "--baseline", "sp:off"]) == 0
    assert " vs tiny sdpa fp32 sp:off: " in capsys.readouterr().out


def test_diff_lists_the_examples_two_variants_answer_differently(run_dir, capsys):
    capsys.readouterr()
    assert main(["diff", str(run_dir), "eager", "sp:off", "--json"]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert found and all(d["answer_a"] != d["answer_b"] for d in found)
    assert {"prompt", "reference", "score_a", "score_b", "example_id"} <= set(found[0])
    assert any(d["media"].get("image", "").endswith(".png") for d in found if d["task"] == "builtin_image_qa")
    assert main(["diff", str(run_dir), "eager", "sp:off", "--task", "builtin_speech_asr"]) == 0
    text = capsys.readouterr().out
    assert "audio: " in text and "builtin_speech_asr: " in text and "differing" in text
    assert main(["diff", str(run_dir), "eager", "nothing-like-this"]) == 2
    assert "variants are: tiny eager fp32" in capsys.readouterr().err


def test_rerun_reproduces_the_accuracy_numbers_exactly(run_dir, tmp_path, capsys):
    again = tmp_path / "again"
    capsys.readouterr()
    assert main(["rerun", str(run_dir), "--out", str(again)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"reproduced: all \d+ accuracy numbers identical", out)
    assert "tiny eager fp32 (again) vs tiny eager fp32 (three): decode x" in out and "identical on every example" in out
    assert (again / "verdict-vs-three.md").is_file() and read_manifest(again)["request"] == read_manifest(run_dir)["request"]
    with pytest.raises(EvalError, match="no manifest.json"):
        read_manifest(tmp_path)
    assert main(["rerun", str(run_dir), "--out", str(run_dir)]) == 2


def test_every_repository_task_names_the_files_a_manifest_hashes():
    """A built-in or media task's data files exist, so a run's manifest records what it read."""
    from evals.tasks import all_tasks
    from evals.tasks.builtin import DATA

    repository_tasks = [t for t in all_tasks().values() if t.suite in ("builtin", "media")]
    assert {t.suite for t in repository_tasks} == {"builtin", "media"}
    for task in repository_tasks:
        files = task.source.get("files", [])
        assert files, f"{task.name} names no source files"
        assert all((DATA / f).is_file() for f in files), task.name
