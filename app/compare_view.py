"""What the Compare tab shows of a finished run: the verdict, the table, the charts, the manifest, the disagreements.

Everything here renders evals' results (evals.report, evals.diff); nothing computes a metric.
Untrusted text (prompts, model answers, references) is HTML-escaped; media thumbnails are
embedded only for files of the built-in suites (evals/data), never for arbitrary paths.
"""

from __future__ import annotations

import base64
import re
from html import escape
from pathlib import Path

import plotly.graph_objects as go

MAX_ROWS = 200  # disagreements shown at once (the CLI lists all)
MAX_MEDIA_BYTES = 2 * 2**20  # larger files are named, not embedded
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".flac": "audio/flac", ".wav": "audio/wav", ".ogg": "audio/ogg", ".mp3": "audio/mpeg"}
FILTER_CHOICES = [("every differing example", "all"), ("A right / B wrong", "a_better"), ("B right / A wrong", "b_better")]
COMPARE_CSS = """
#compare-table th, #compare-table th * { word-break: normal !important; overflow-wrap: normal !important; hyphens: none; }
.g3n-diff table { border-collapse: collapse; width: 100%; font-size: 0.9em; }
.g3n-diff th, .g3n-diff td { border-bottom: 1px solid var(--border-color-primary); padding: 4px 8px; text-align: left; vertical-align: top; }
.g3n-diff td.better { background: rgba(34, 197, 94, 0.15); }
.g3n-diff td.worse { background: rgba(239, 68, 68, 0.12); }
.g3n-diff img { max-width: 72px; max-height: 72px; display: block; margin-top: 4px; }
.g3n-diff audio { width: 220px; display: block; margin-top: 4px; }
.g3n-diff small { color: var(--body-text-color-subdued); }
"""


def verdict_markdown(lines: list[str], baseline: str) -> str:
    """The verdict lines as Markdown, 'better' and 'worse' in bold."""
    if not lines:
        return "### Verdict\n\nNothing to compare yet: the run has fewer than two variants with results."
    body = "\n".join(f"- {escape(line)}" for line in lines)
    body = re.sub(r"\b(better|worse)( on )", r"**\1**\2", body)
    return (f"### Verdict (baseline: {escape(baseline)})\n\n{body}\n\n"
            "<small>Ratios are candidate / baseline medians with 95% bootstrap intervals; accuracy differences are in points with "
            "95% intervals, p-values (Holm-adjusted over the tasks) and the smallest difference the examples could detect. "
            "How to read it: docs/evals.md, “Reading a verdict”.</small>")  # fmt: skip


def manifest_markdown(lines: list[str]) -> str:
    """The manifest summary as Markdown."""
    return "\n".join(f"- {escape(line)}" for line in lines)


def has_data(figure: go.Figure) -> bool:
    """True when a figure draws anything."""
    return any(trace.x is not None and len(trace.x) > 0 for trace in figure.data)


def styled(name: str, figure: go.Figure | None) -> go.Figure:
    """Page layout for evals' figures: one height, legends below, room for point labels."""
    figure = figure or go.Figure()
    figure.update_layout(height=360, margin=dict(l=55, r=25, t=50, b=45), legend=dict(orientation="h", y=-0.28))
    if name.startswith("accuracy_vs_"):
        xs = [float(x) for trace in figure.data if trace.x is not None for x in trace.x if x is not None]
        if xs:
            low, high = min(xs), max(xs)
            pad = 0.25 * (high - low) or 0.25 * abs(high) or 1.0
            figure.update_xaxes(range=[low - pad, high + pad])
    return figure


def _media_html(media: dict[str, str], data_root: Path) -> str:
    parts = []
    for kind, path in media.items():
        file = Path(path).resolve()
        mime = MIME.get(file.suffix.lower())
        inside = file.is_relative_to(data_root.resolve()) and file.is_file()
        if not (inside and mime and file.stat().st_size <= MAX_MEDIA_BYTES):
            parts.append(f"<small>{escape(kind)}: {escape(file.name)}</small>")
            continue
        data = base64.b64encode(file.read_bytes()).decode()
        if kind == "image":
            parts.append(f'<img alt="{escape(file.name)}" src="data:{mime};base64,{data}">')
        else:
            parts.append(f'<audio controls preload="none" src="data:{mime};base64,{data}"></audio>')
    return "".join(parts)


def _answer_cell(text: str, metric: str | None, score: float | None, mark: str) -> str:
    scored = f"<br><small>{escape(metric)} {score:g}</small>" if metric and score is not None else ""
    return f'<td class="{mark}">{escape(text) or "<small>(empty)</small>"}{scored}</td>'


def explorer_html(found: list, a: str, b: str, task: str, data_root: Path) -> str:
    """The disagreements of two variants on a task as an HTML table (prompt with its media, reference, both answers)."""
    if not found:
        return f'<div class="g3n-diff" id="diff-summary"><p>No differing examples on {escape(task)} for this filter.</p></div>'
    wins = sum(d.better == "a" for d in found), sum(d.better == "b" for d in found)
    rows = []
    for d in found[:MAX_ROWS]:
        mark_a = "better" if d.better == "a" else "worse" if d.better == "b" else ""
        mark_b = {"better": "worse", "worse": "better"}.get(mark_a, "")
        rows.append(
            f"<tr><td><small>{escape(d.example_id)}</small></td><td>{escape(d.prompt)}{_media_html(d.media, data_root)}</td>"
            f"<td>{escape(d.reference)}</td>{_answer_cell(d.answer_a, d.metric, d.score_a, mark_a)}{_answer_cell(d.answer_b, d.metric, d.score_b, mark_b)}</tr>"
        )
    more = f" (showing the first {MAX_ROWS}; `python -m evals diff` lists all)" if len(found) > MAX_ROWS else ""
    return (
        f'<div class="g3n-diff"><p id="diff-summary">{len(found)} differing examples on {escape(task)}: A better on {wins[0]}, '
        f"B better on {wins[1]}{more}.</p><table><thead><tr><th>example</th><th>prompt</th><th>reference</th>"
        f"<th>A: {escape(a)}</th><th>B: {escape(b)}</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
