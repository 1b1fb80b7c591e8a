"""A local Hugging Face hub for tests, serving checkpoints in the released Gemma 3n layout.

`HubMirror` is a stdlib HTTP server on 127.0.0.1 (a free port, in a thread) that answers what
huggingface_hub 2.4 asks when it resolves and downloads a model repository:

- `GET /api/models/{repo}/revision/{rev}`: repo info with the commit sha (`HfApi.repo_info`);
- `GET /api/models/{repo}/tree/{rev}[/{path}]`: the recursive file listing with git blob ids and LFS
  sha256s (`HfApi.list_repo_tree`, used by `snapshot_download`);
- `HEAD|GET /{repo}/resolve/{rev}/{file}`: small files directly, with `ETag` (the git blob id),
  `X-Repo-Commit` and `Content-Length`; LFS files (safetensors) as the hub serves them: a 302 to a
  CDN on another origin (`localhost` instead of `127.0.0.1`), carrying `X-Linked-Etag` (sha256) and
  `X-Linked-Size`, and the CDN serving the bytes (with `Range`);
- unknown repos, revisions and files as 404s with the hub's `X-Error-Code`.

Every request is logged (`requests`), so a test can prove an offline load asked nothing.
`write_released_layout` turns the built-in tiny checkpoint into the layout of
`google/gemma-3n-E2B-it` as released: bfloat16 weights sharded with `model.safetensors.index.json`,
the k/v projections of the KV-shared layers stored (the conversion writes them though transformers
builds no modules for them), a config.json with transformers 4's keys, the joint
`preprocessor_config.json`, `tokenizer.json` + `tokenizer_config.json`, `chat_template.jinja` and the
released `generation_config.json`.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import torch
from safetensors.torch import load_file, save_file

REPO = "google/gemma-3n-E2B-it"
LFS_SUFFIXES = (".safetensors",)
# generation_config.json of the released -it checkpoints.
RELEASED_GENERATION_CONFIG = {
    "bos_token_id": 2,
    "cache_implementation": "hybrid",
    "do_sample": True,
    "eos_token_id": [1, 106],
    "pad_token_id": 0,
    "top_k": 64,
    "top_p": 0.95,
    "transformers_version": "4.53.0.dev0",
}
TRANSFORMERS_5_ONLY = ("rope_parameters", "dtype")  # the released config.json predates these keys
TEXT = "model.language_model."


# -- the released layout --------------------------------------------------------------------------


def _legacy_config(config: dict) -> dict:
    from g3n_core.matformer.export import legacy_keys

    def strip(d: dict) -> dict:
        return {k: strip(v) if k.endswith("_config") and isinstance(v, dict) else v for k, v in d.items() if k not in TRANSFORMERS_5_ONLY}

    return {**strip(legacy_keys({**config, "dtype": "bfloat16"})), "transformers_version": "4.53.0.dev0"}


def shared_kv_tensors(text_config: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """The k/v projections and k norms of the KV-shared layers, as the released files hold them (unused by transformers)."""
    layers = text_config["num_hidden_layers"]
    shared = range(layers - text_config["num_kv_shared_layers"], layers)
    width, hidden, head = text_config["num_key_value_heads"] * text_config["head_dim"], text_config["hidden_size"], text_config["head_dim"]
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for i in shared:
        prefix = f"{TEXT}layers.{i}.self_attn."
        tensors[prefix + "k_proj.weight"] = (torch.randn(width, hidden, generator=generator) * hidden**-0.5).bfloat16()
        tensors[prefix + "v_proj.weight"] = (torch.randn(width, hidden, generator=generator) * hidden**-0.5).bfloat16()
        tensors[prefix + "k_norm.weight"] = torch.ones(head, dtype=torch.bfloat16)
    return tensors


def _write_shards(tensors: dict[str, torch.Tensor], out: Path, shards: int) -> None:
    names = sorted(tensors)
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    groups: list[list[str]] = [[] for _ in range(shards)]
    filled = 0
    for name in names:  # consecutive names, cut by bytes, as save_pretrained's max_shard_size does
        index = min(shards - 1, filled * shards // max(total, 1))
        groups[index].append(name)
        filled += tensors[name].numel() * tensors[name].element_size()
    weight_map = {}
    for number, group in enumerate(groups, start=1):
        filename = f"model-{number:05d}-of-{shards:05d}.safetensors"
        save_file({name: tensors[name].contiguous() for name in group}, out / filename, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(group, filename))
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


def write_released_layout(src: Path, out: Path, shards: int = 3) -> Path:
    """The tiny checkpoint `src` rewritten into `out` in google/gemma-3n-E2B-it's released layout (small weights)."""
    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((src / "config.json").read_text())
    tensors = {name: t.bfloat16() if t.is_floating_point() else t for name, t in load_file(src / "model.safetensors").items()}
    tensors.update(shared_kv_tensors(config["text_config"]))
    _write_shards(tensors, out, shards)
    (out / "config.json").write_text(json.dumps(_legacy_config(config), indent=2, sort_keys=True) + "\n")
    processor = json.loads((src / "processor_config.json").read_text())
    joint = {**processor["image_processor"], **processor["feature_extractor"], "processor_class": processor["processor_class"]}
    joint["image_seq_length"] = processor["image_seq_length"]
    (out / "preprocessor_config.json").write_text(json.dumps(joint, indent=2, sort_keys=True) + "\n")
    seq = {k: processor[k] for k in ("audio_seq_length", "image_seq_length", "processor_class")}
    (out / "processor_config.json").write_text(json.dumps(seq, indent=2) + "\n")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copyfile(src / name, out / name)
    (out / "generation_config.json").write_text(json.dumps(RELEASED_GENERATION_CONFIG, indent=2) + "\n")
    (out / "README.md").write_text("---\nlibrary_name: transformers\nlicense: gemma\n---\n# gemma-3n-E2B-it (test mirror: small random weights)\n")
    (out / ".gitattributes").write_text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
    return out


# -- the server -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _File:
    path: str
    local: Path
    size: int
    blob_id: str  # git's sha1 of the blob (of the LFS pointer for LFS files)
    sha256: str | None  # LFS files only

    @property
    def lfs(self) -> bool:
        return self.sha256 is not None


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _describe_files(folder: Path) -> dict[str, _File]:
    files = {}
    for local in sorted(p for p in folder.rglob("*") if p.is_file()):
        path = local.relative_to(folder).as_posix()
        data = local.read_bytes()
        if path.endswith(LFS_SUFFIXES):
            sha = hashlib.sha256(data).hexdigest()
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n".encode()
            files[path] = _File(path, local, len(data), _git_blob_id(pointer), sha)
        else:
            files[path] = _File(path, local, len(data), _git_blob_id(data), None)
    return files


class _Repo:
    def __init__(self, repo_id: str, folder: Path):
        self.repo_id = repo_id
        self.files = _describe_files(folder)
        listing = "".join(f"{f.path}\0{f.blob_id}\n" for f in self.files.values()).encode()
        self.commit = hashlib.sha1(listing).hexdigest()
        self.by_sha256 = {f.sha256: f for f in self.files.values() if f.lfs}

    def info(self) -> dict:
        return {
            "_id": self.commit[:24], "id": self.repo_id, "modelId": self.repo_id, "author": self.repo_id.split("/")[0],
            "sha": self.commit, "private": False, "gated": False, "disabled": False, "downloads": 0, "likes": 0,
            "library_name": "transformers", "pipeline_tag": "image-text-to-text", "tags": ["transformers", "gemma3n"],
            "lastModified": "2025-06-26T00:00:00.000Z", "createdAt": "2025-06-26T00:00:00.000Z",
            "siblings": [{"rfilename": path} for path in self.files],
        }  # fmt: skip

    def tree(self, prefix: str) -> list[dict]:
        entries, folders = [], set()
        for f in self.files.values():
            if prefix and not f.path.startswith(prefix.rstrip("/") + "/"):
                continue
            parts = f.path.split("/")[:-1]
            folders.update("/".join(parts[: i + 1]) for i in range(len(parts)))
            entry = {"type": "file", "oid": f.blob_id, "size": f.size, "path": f.path}
            if f.lfs:
                entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": 134}
            entries.append(entry)
        return [{"type": "directory", "oid": "0" * 40, "size": 0, "path": d} for d in sorted(folders)] + entries


_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/(?P<kind>revision|tree)/(?P<rev>[^/]+)(?:/(?P<path>.*))?)?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_CDN = re.compile(r"^/cdn/(?P<sha>[0-9a-f]{64})$")


class HubMirror:
    """A hub at `url` serving {repo_id: folder}; use as a context manager (starts and stops the server)."""

    def __init__(self, repos: dict[str, Path]):
        self.repos = {repo_id: _Repo(repo_id, Path(folder)) for repo_id, folder in repos.items()}
        self.requests: list[tuple[str, str]] = []
        mirror = self

        class Handler(_Handler):
            hub = mirror

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.cdn = f"http://localhost:{self.port}/cdn"  # another origin, as the hub's CDN is
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HubMirror:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def commit(self, repo_id: str = REPO) -> str:
        """The commit sha `main` resolves to."""
        return self.repos[repo_id].commit


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: HubMirror

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's signature
        pass

    def do_HEAD(self) -> None:  # noqa: N802 - the stdlib's name
        self._route(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._route(head=False)

    def _route(self, head: bool) -> None:
        path = unquote(urlparse(self.path).path)
        self.hub.requests.append((self.command, path))
        if path in ("", "/"):
            return self._send(200, b"local hub mirror\n", {"Content-Type": "text/plain"}, head)
        for pattern, serve in ((_API, self._api), (_RESOLVE, self._resolve), (_CDN, self._cdn)):
            match = pattern.match(path)
            if match:
                return serve(match, head)
        self._error(404, "EntryNotFound", "no such route", head)

    def _repo(self, match, head: bool) -> _Repo | None:
        repo = self.hub.repos.get(match["repo"])
        if repo is None:
            self._error(401, "RepoNotFound", f"Repository Not Found for url: {self.path}", head)
            return None
        rev = match.groupdict().get("rev")
        if rev not in (None, "main", repo.commit):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head)
            return None
        return repo

    def _api(self, match, head: bool) -> None:
        repo = self._repo(match, head)
        if repo is None:
            return
        body = repo.tree(match["path"] or "") if match["kind"] == "tree" else repo.info()
        self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"}, head)

    def _resolve(self, match, head: bool) -> None:
        repo = self._repo(match, head)
        if repo is None:
            return
        f = repo.files.get(match["path"])
        if f is None:
            return self._error(404, "EntryNotFound", f"{match['path']} does not exist on main", head, {"X-Repo-Commit": repo.commit})
        headers = {"X-Repo-Commit": repo.commit, "ETag": f'"{f.blob_id}"'}
        if f.lfs:
            headers.update({"Location": f"{self.hub.cdn}/{f.sha256}", "X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(f.size)})
            return self._send(302, b"", headers, head)
        self._send(200, f.local.read_bytes(), headers, head)

    def _cdn(self, match, head: bool) -> None:
        f = next((r.by_sha256[match["sha"]] for r in self.hub.repos.values() if match["sha"] in r.by_sha256), None)
        if f is None:
            return self._error(404, "EntryNotFound", "no such object", head)
        data = f.local.read_bytes()
        start = 0
        ranged = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
        if ranged:
            start = min(int(ranged[1]), len(data))
        headers = {"ETag": f'"{f.sha256}"', "Content-Type": "application/octet-stream"}
        if ranged:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self._send(206 if ranged else 200, data[start:], headers, head)

    def _error(self, status: int, code: str, message: str, head: bool, extra: dict | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        self._send(status, body, {"Content-Type": "application/json", "X-Error-Code": code, "X-Error-Message": message, **(extra or {})}, head)

    def _send(self, status: int, body: bytes, headers: dict[str, str], head: bool) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
