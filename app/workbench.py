"""The server-wide objects every session shares: the model cache, the media policy, the launch model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from g3n_core import MediaPolicy, ModelCache, Variant

from .examples import EXAMPLES_DIR
from .results_quota import DEFAULT_RESULTS_QUOTA, ResultsQuota, parse_size
from .safety import media_policy
from .streams import SessionStreams


@dataclass
class Workbench:
    """What the app was started with. Per-user things (chat history, chosen variant) live in gr.State instead."""

    default_variant: Variant
    cache: ModelCache
    policy: MediaPolicy
    examples_dir: Path = EXAMPLES_DIR
    results_root: Path = Path("results/app")
    model_roots: tuple[Path, ...] = ()
    concurrency_limit: int = 2  # chat requests running at once per model group: one decoding, one preparing
    remote_endpoints: tuple[str, ...] = ()  # OpenAI-compatible endpoints the operator lets users compare (--remote-endpoint)
    notes: list[str] = field(default_factory=list)  # said once at start-up, e.g. "hub unreachable: fell back to tiny"
    streams: SessionStreams = field(default_factory=SessionStreams)  # replies in flight, for each session's stop button
    quota: ResultsQuota | None = None  # the results folder's size limit (default: DEFAULT_RESULTS_QUOTA)

    def __post_init__(self) -> None:
        if self.quota is None:
            self.quota = ResultsQuota(self.results_root, parse_size(DEFAULT_RESULTS_QUOTA))

    @property
    def downloads_dir(self) -> Path:
        """The only folder under the results that the file route serves: copies of what the page offers to download."""
        return (Path(self.results_root) / "downloads").resolve()

    @property
    def exports_dir(self) -> Path:
        """Where the MatFormer tab writes checkpoints (an allowed model root)."""
        return (Path(self.results_root) / "exports").resolve()

    def models_in_use(self) -> list[Path]:
        """Folders the cached models were loaded from (their exports must not be cleaned up under them)."""
        return [Path(v.model) for v in self.cache.variants() if Path(v.model).is_dir()]

    @property
    def chat_concurrency_id(self) -> str:
        """Queue group of every event that generates with the launch model (UI chat, retry, examples, /chat API)."""
        return f"generate:{self.default_variant.name}"


def make_workbench(
    variant: Variant,
    *,
    allow_url_media: bool = False,
    results_root: Path | str = "results/app",
    model_roots: tuple[Path, ...] = (),
    concurrency_limit: int = 2,
    remote_endpoints: tuple[str, ...] = (),
    cache: ModelCache | None = None,
    notes: list[str] | None = None,
    results_quota: str | int = DEFAULT_RESULTS_QUOTA,
    media_limits: dict | None = None,
) -> Workbench:
    """A Workbench (a fresh ModelCache unless one is given).

    Allowed model folders: `model_roots`, the launch model's own folder, and the MatFormer exports
    this app writes (<results_root>/exports). `media_limits`: MediaPolicy limits (app.py's media options).
    """
    bench = Workbench(
        default_variant=variant,
        cache=cache or ModelCache(),
        policy=media_policy(EXAMPLES_DIR, allow_network=allow_url_media, **(media_limits or {})),
        results_root=Path(results_root),
        concurrency_limit=concurrency_limit,
        remote_endpoints=tuple(u.rstrip("/") for u in remote_endpoints),
        notes=list(notes or []),
        quota=ResultsQuota(results_root, parse_size(results_quota)),
    )
    roots = (*(Path(r).resolve() for r in model_roots), bench.exports_dir)
    if Path(variant.model).is_dir():
        roots += (Path(variant.model).resolve(),)
    bench.model_roots = roots
    return bench
