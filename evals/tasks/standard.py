"""Standard benchmarks through `datasets`: ARC-Easy/Challenge, HellaSwag, BoolQ, PIQA, MMLU, FLEURS ASR.

Shots follow the Gemma 3n model card (pretrained-model table: HellaSwag 10-shot, BoolQ 0, PIQA 0,
ARC-e 0, ARC-c 25; MMLU 5-shot, the standard MMLU setting). The card does not publish prompt
templates, so the prompts are lm-evaluation-harness 0.4.13's for the same tasks (arc_easy.yaml,
hellaswag.yaml + utils.py, super_glue/boolq, piqa.yaml, mmlu/default), with its few-shot draws
(`random` with seed 1234, MMLU `first_n` of the subject's dev split).

Every loader reads the hub dataset, or, given `data_dir`, local files in the dataset's own schema:
`<data_dir>/<folder>/[<config>/]<split>*.{jsonl,json,parquet}` (the hub's parquet layout works
as is). Tests use small fixtures in that layout, so no test touches the network.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from g3n_core.errors import EvalError

from .base import Task
from .generation import speech_recognition_task
from .multiple_choice import MultipleChoiceTask

SUFFIXES = (".jsonl", ".json", ".parquet")


@dataclass(frozen=True)
class DataSource:
    """Where a benchmark's rows come from: a hub dataset (and config), or a local copy under `data_dir`."""

    dataset: str  # hub id
    config: str | None
    folder: str  # name of its folder under a local data_dir
    revision: str | None = None

    def describe(self, data_dir: Path | None) -> dict:
        """Where the rows come from, for run manifests (the hub revision is resolved there when online)."""
        found = {"dataset": self.dataset, "config": self.config, "revision": self.revision}
        return found | ({"data_dir": str(data_dir)} if data_dir is not None else {})

    def local_files(self, data_dir: Path, split: str) -> list[Path]:
        """Files of `split` in the local copy (empty when there are none)."""
        root = data_dir / self.folder
        folder = root / self.config if self.config and (root / self.config).is_dir() else root
        if not folder.is_dir():
            return []
        pattern = re.compile(rf"^{re.escape(split)}([-_.].*)?$")
        return sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and pattern.match(p.stem))

    def rows(self, split: str, data_dir: str | Path | None = None) -> list[dict]:
        """Every row of `split`, as plain dicts in the dataset's schema (audio left undecoded)."""
        import datasets

        try:
            if data_dir is not None:
                files = self.local_files(Path(data_dir), split)
                if not files:
                    raise EvalError(f"no {split} files for {self.dataset} under {Path(data_dir) / self.folder}; expected <split>*.jsonl or .parquet")
                builder = "parquet" if files[0].suffix == ".parquet" else "json"
                table = datasets.load_dataset(builder, data_files={split: [str(f) for f in files]}, split=split)
            else:
                table = datasets.load_dataset(self.dataset, self.config, split=split, revision=self.revision)
        except EvalError:
            raise
        except Exception as err:  # noqa: BLE001 - hub / file errors come in many types; all mean the same to a user
            raise EvalError(
                f"could not load {self.dataset} ({self.config or 'default'}, {split}): {err}. "
                "With no network, pass --data-dir pointing at a local copy in the dataset's own layout."
            ) from err
        if isinstance(table.features.get("audio"), datasets.Audio):
            table = table.cast_column("audio", datasets.Audio(decode=False))  # decoded by g3n_core.media instead
        return table.to_list()


# -- lm-eval's prompt formats ---------------------------------------------------------------------


def arc_doc(row: dict) -> dict:
    """allenai/ai2_arc row -> doc (lm-eval arc_easy.yaml)."""
    labels = list(row["choices"]["label"])
    return {"query": f"Question: {row['question']}\nAnswer:", "choices": list(row["choices"]["text"]), "gold": labels.index(row["answerKey"])}


def hellaswag_text(text: str) -> str:
    """lm-eval hellaswag/utils.py `preprocess`: drop WikiHow bracket artifacts and double spaces."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def hellaswag_doc(row: dict) -> dict:
    """Rowan/hellaswag row -> doc (lm-eval hellaswag `process_docs`)."""
    context = row["ctx_a"] + " " + row["ctx_b"].capitalize()
    return {
        "query": hellaswag_text(row["activity_label"] + ": " + context),
        "choices": [hellaswag_text(ending) for ending in row["endings"]],
        "gold": int(row["label"]),
    }


def boolq_doc(row: dict) -> dict:
    """super_glue boolq row -> doc (lm-eval super_glue/boolq/default.yaml)."""
    return {"query": f"{row['passage']}\nQuestion: {row['question']}?\nAnswer:", "choices": ["no", "yes"], "gold": int(row["label"])}


def piqa_doc(row: dict) -> dict:
    """piqa row -> doc (lm-eval piqa.yaml)."""
    return {"query": f"Question: {row['goal']}\nAnswer:", "choices": [row["sol1"], row["sol2"]], "gold": int(row["label"])}


def mmlu_query(row: dict) -> str:
    """lm-eval mmlu/default template."""
    a, b, c, d = row["choices"]
    return f"{row['question'].strip()}\nA. {a}\nB. {b}\nC. {c}\nD. {d}\nAnswer:"


def mmlu_docs(rows: list[dict], dev_rows: list[dict], shots: int = 5) -> list[dict]:
    """cais/mmlu rows -> docs with their subject line and the subject's first dev examples (lm-eval first_n)."""
    dev_by_subject: dict[str, list[dict]] = defaultdict(list)
    for row in dev_rows:
        dev_by_subject[row["subject"]].append({"query": mmlu_query(row), "choices": ["A", "B", "C", "D"], "gold": int(row["answer"])})
    return [
        {
            "query": mmlu_query(row),
            "choices": ["A", "B", "C", "D"],
            "gold": int(row["answer"]),
            "prefix": f"The following are multiple choice questions (with answers) about {row['subject'].replace('_', ' ')}.\n\n",
            "shots": dev_by_subject[row["subject"]][:shots],
        }
        for row in rows
    ]


def fleurs_doc(row: dict, data_dir: Path | None) -> dict:
    """google/fleurs row -> doc: the audio (bytes, or a path relative to the local copy) and its transcript."""
    audio = row["audio"]
    if isinstance(audio, dict):
        audio = audio.get("bytes") or audio.get("path")
    if isinstance(audio, str) and data_dir is not None and not Path(audio).is_absolute():
        audio = str(data_dir / "fleurs" / audio)
    return {"audio": audio, "transcript": row["transcription"]}


# -- the benchmarks -------------------------------------------------------------------------------

ARC_E = DataSource("allenai/ai2_arc", "ARC-Easy", "ai2_arc")
ARC_C = DataSource("allenai/ai2_arc", "ARC-Challenge", "ai2_arc")
HELLASWAG = DataSource("Rowan/hellaswag", None, "hellaswag")
BOOLQ = DataSource("aps/super_glue", "boolq", "super_glue")
PIQA = DataSource("baber/piqa", None, "piqa")
MMLU = DataSource("cais/mmlu", "all", "mmlu")
FLEURS = DataSource("google/fleurs", "en_us", "fleurs", revision="refs/convert/parquet")  # the hub repo is a loading script


def _mc(name, source, convert, eval_split, fewshot_split, shots, description, licence, data_dir, metrics=("acc", "acc_norm")):
    return MultipleChoiceTask(
        name=name,
        suite="standard",
        description=description,
        load=lambda: [convert(r) for r in source.rows(eval_split, data_dir)],
        fewshot=(lambda: [convert(r) for r in source.rows(fewshot_split, data_dir)]) if fewshot_split else None,
        num_fewshot=shots,
        metric_names=metrics,
        licence=licence,
        source=source.describe(data_dir),
    )


def standard_tasks(data_dir: str | Path | None = None) -> list[Task]:
    """ARC-e, ARC-c, HellaSwag, BoolQ, PIQA, MMLU, FLEURS ASR; from the hub, or from `data_dir`."""
    local = Path(data_dir) if data_dir is not None else None
    mmlu = MultipleChoiceTask(
        name="mmlu",
        suite="standard",
        description="MMLU (cais/mmlu 'all', test split), 5-shot from each subject's dev split; acc",
        load=lambda: mmlu_docs(MMLU.rows("test", local), MMLU.rows("dev", local)),
        num_fewshot=5,
        metric_names=("acc",),
        licence="MIT",
        source=MMLU.describe(local),
    )
    fleurs: Callable[[], list[dict]] = lambda: [fleurs_doc(r, local) for r in FLEURS.rows("test", local)]  # noqa: E731
    return [
        _mc("arc_easy", ARC_E, arc_doc, "test", "train", 0, "ARC-Easy test, 0-shot; acc, acc_norm", "CC BY-SA 4.0", local),
        _mc("arc_challenge", ARC_C, arc_doc, "test", "train", 25, "ARC-Challenge test, 25-shot; acc, acc_norm", "CC BY-SA 4.0", local),
        _mc("hellaswag", HELLASWAG, hellaswag_doc, "validation", "train", 10, "HellaSwag validation, 10-shot; acc, acc_norm", "MIT", local),
        _mc("boolq", BOOLQ, boolq_doc, "validation", "train", 0, "BoolQ (SuperGLUE) validation, 0-shot; acc", "CC BY-SA 3.0", local, ("acc",)),
        _mc("piqa", PIQA, piqa_doc, "validation", "train", 0, "PIQA validation, 0-shot; acc, acc_norm", "AFL 3.0", local),
        mmlu,
        speech_recognition_task("fleurs_asr", "FLEURS en_us test, transcribe; WER and CER", fleurs, suite="standard", licence="CC BY 4.0", max_new_tokens=128,
                                source=FLEURS.describe(local)),
    ]
