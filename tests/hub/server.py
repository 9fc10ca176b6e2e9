"""A local Hugging Face Hub for tests: the HTTP endpoints `huggingface_hub` 2.4 and `datasets` 5.2 call.

Built on `pytest_httpserver.HTTPServerBase` (werkzeug, one thread per request), bound to 127.0.0.1 on a
free port. Repositories live in memory: every commit keeps its own file table, so a branch moves on and an
older commit sha still resolves to the older files. What is served (paths as the clients build them):

| route (R = org/name)                           | client call                                        |
| ---------------------------------------------- | -------------------------------------------------- |
| `POST /api/repos/create`                       | `create_repo` (models, datasets; `visibility`)     |
| `POST /api/validate-yaml`                      | README.md front matter check in `create_commit`    |
| `GET  /api/{models,datasets}/R[/revision/REV]` | `repo_info` / `model_info` / `dataset_info`        |
| `GET  /api/{..}/R/tree/REV[/PATH]?recursive=`  | `list_repo_tree` (snapshot_download, HfFileSystem) |
| `POST /api/{..}/R/paths-info/REV`              | `get_paths_info` (HfFileSystem.info)               |
| `GET  /api/{..}/R/refs`                        | `list_repo_refs`                                   |
| `POST /api/{..}/R/branch/BRANCH`               | `create_branch` (`startingPoint`)                  |
| `POST /api/{..}/R/preupload/REV`               | upload mode per file (regular, lfs) + remote oid   |
| `POST /[datasets/]R.git/info/lfs/objects/batch`| Git LFS batch API, "basic" transfer                |
| `PUT  /lfs/SHA256`                             | the upload href the batch answer gives             |
| `POST /api/{..}/R/commit/REV`                  | NDJSON commit: file, lfsFile, deletedFile/Folder   |
| `HEAD/GET /[datasets/]R/resolve/REV/PATH`      | `hf_hub_download`, HfFileSystem reads (Range)      |

Xet storage is not served: the `hub_server` fixture sets `HF_HUB_DISABLE_XET`, which makes the client use
the LFS protocol above (as it does against any Hub without Xet).

Errors carry the headers `huggingface_hub.utils.hf_raise_for_status` maps to its named errors:
`X-Error-Code: RepoNotFound` (401 without a valid token, 404 with one, as the real Hub answers for
private repositories), `RevisionNotFound` (404), `EntryNotFound` (404, with `X-Repo-Commit`).

Faults for tests: `fail(route, status, times)` answers a route with an HTTP error, `drop_download(path)`
cuts a file download short and closes the connection. Every request is recorded in `calls`.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import itertools
import json
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import yaml
from pytest_httpserver.httpserver import HTTPServerBase
from werkzeug import Request, Response

DEFAULT_TOKEN = "hf_local_hub_test_token"
LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub stores larger files in LFS whatever .gitattributes says
# The .gitattributes the Hub writes into every new repository (abridged): these go to LFS.
LFS_PATTERNS = (
    "*.7z *.arrow *.bin *.bz2 *.ckpt *.gz *.h5 *.joblib *.msgpack *.npy *.npz *.onnx *.parquet *.pb "
    "*.pickle *.pkl *.pt *.pth *.rar *.safetensors *.tar *.tflite *.tgz *.xz *.zip *.zst *tfevents*"
).split()
GITATTRIBUTES = "".join(f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in LFS_PATTERNS)
_REPO = r"(?P<repo>[^/]+/[^/]+)"
_API = rf"^/api/(?P<kind>models|datasets)/{_REPO}"
_PREFIX = r"^/(?:(?P<prefix>datasets)/)?"
_PATTERNS = (
    ("POST", "create", re.compile(r"^/api/repos/create$")),
    ("POST", "validate-yaml", re.compile(r"^/api/validate-yaml$")),
    ("GET", "info", re.compile(rf"{_API}(?:/revision/(?P<rev>[^/]+))?$")),
    ("GET", "tree", re.compile(rf"{_API}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$")),
    ("POST", "paths-info", re.compile(rf"{_API}/paths-info/(?P<rev>[^/]+)$")),
    ("GET", "refs", re.compile(rf"{_API}/refs$")),
    ("POST", "branch", re.compile(rf"{_API}/branch/(?P<rev>[^/]+)$")),
    ("POST", "preupload", re.compile(rf"{_API}/preupload/(?P<rev>[^/]+)$")),
    ("POST", "commit", re.compile(rf"{_API}/commit/(?P<rev>[^/]+)$")),
    ("POST", "lfs-batch", re.compile(rf"{_PREFIX}{_REPO}\.git/info/lfs/objects/batch$")),
    ("PUT", "lfs-upload", re.compile(r"^/lfs/(?P<oid>[0-9a-f]{64})$")),
    ("GET", "resolve", re.compile(rf"{_PREFIX}{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")),
)
ROUTES = tuple(route for _, route, _ in _PATTERNS)
_KIND_OF_PREFIX = {None: "model", "datasets": "dataset"}
_KIND_OF_PLURAL = {"models": "model", "datasets": "dataset"}


class HubHTTPError(Exception):
    """An error answer: status, message and the `X-Error-Code` the client maps to a named error."""

    def __init__(
        self, status: int, message: str, code: str | None = None, headers: dict | None = None, **body
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers, self.body = headers or {}, body


@dataclass(frozen=True)
class Blob:
    """A file's content; `lfs` files are stored by sha256 and served with the X-Linked-* headers."""

    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        spec = "version https://git-lfs.github.com/spec/v1"
        return f"{spec}\noid sha256:{self.sha256}\nsize {len(self.data)}\n".encode()

    @property
    def git_oid(self) -> str:
        """The git blob id: of the content, or of the LFS pointer file for LFS files (as git stores it)."""
        stored = self.pointer if self.lfs else self.data
        return hashlib.sha1(b"blob %d\0" % len(stored) + stored).hexdigest()

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.git_oid


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    files: dict[str, Blob]


@dataclass
class Repo:
    kind: str  # "model" | "dataset"
    repo_id: str
    private: bool
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)


@dataclass
class Fault:
    """`route` answers `status`; route "drop" stops `path`'s download at byte `at`. `times` None: always."""

    route: str
    status: int = 500
    times: int | None = 1
    path: str | None = None
    at: int | None = None


class LocalHub(HTTPServerBase):
    """The Hub on 127.0.0.1:<free port>; `url` is what HF_ENDPOINT is set to. Start with `start()`."""

    def __init__(self, token: str = DEFAULT_TOKEN) -> None:
        super().__init__("127.0.0.1", 0, threaded=True)
        self.token = token
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_store: dict[str, bytes] = {}
        self.faults: list[Fault] = []
        self.calls: list[tuple[str, str, int]] = []  # (method, path, status) of every request
        self._lock = threading.RLock()
        self._counter = itertools.count()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start serving in a thread; werkzeug's line per request is silenced (`calls` records them)."""
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        super().start()

    # ------------------------------------------------------------------------------------- test API

    def reset(self) -> None:
        """Forget every repository, stored object, fault and recorded call."""
        with self._lock:
            self.repos.clear()
            self.lfs_store.clear()
            self.faults.clear()
            self.calls.clear()
            self.clear_log()

    def fail(self, route: str, status: int = 500, times: int | None = 1) -> None:
        """Answer the next `times` requests of `route` (one of ROUTES) with HTTP `status`."""
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; valid: {ROUTES}")
        with self._lock:
            self.faults.append(Fault(route, status=status, times=times))

    def drop_download(self, path: str, at: int | None = None, times: int | None = None) -> None:
        """Cut GET downloads of `path` at byte `at` (default: half the file) and close the connection.

        Content-Length still announces the whole answer. With `times=None` every attempt stops at `at`
        (a request resuming past it gets no byte at all), so the client's retries run out; `times=1`
        drops once and lets the client's retry finish the file.
        """
        with self._lock:
            self.faults.append(Fault("drop", times=times, path=path, at=at))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def head(self, repo_id: str, branch: str = "main", repo_type: str = "model") -> str:
        """The commit sha `branch` points at."""
        with self._lock:
            return self._repo(repo_type, repo_id).branches[branch]

    def history(self, repo_id: str, branch: str = "main", repo_type: str = "model") -> list[str]:
        """Commit shas of `branch`, newest first (the repository's initial commit last)."""
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            oid: str | None = repo.branches[branch]
            shas = []
            while oid is not None:
                shas.append(oid)
                oid = repo.commits[oid].parent
            return shas

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, Blob]:
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            return dict(self._at(repo, revision).files)

    def count(self, route: str, method: str | None = None) -> int:
        """How many requests `route` has answered (any status)."""
        return sum(
            1
            for verb, path, _ in self.calls
            if self._route_of(verb, path) == route and method in (None, verb)
        )

    # ------------------------------------------------------------------------------------- dispatch

    def dispatch(self, request: Request) -> Response:
        raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
        path = urlsplit(raw).path
        method = "GET" if request.method == "HEAD" else request.method
        route, match = self._match(method, path)
        try:
            if route is None:
                raise HubHTTPError(404, f"no such endpoint: {request.method} {path}")
            self._inject_fault(route)
            response = getattr(self, "_on_" + route.replace("-", "_"))(request, match.groupdict())
        except HubHTTPError as error:
            response = _error_response(error)
        self.calls.append((request.method, path, response.status_code))
        return response

    @staticmethod
    def _match(method: str, path: str) -> tuple[str | None, re.Match | None]:
        for verb, route, pattern in _PATTERNS:
            match = pattern.match(path)
            if match and verb == method:
                return route, match
        return None, None

    def _route_of(self, method: str, path: str) -> str | None:
        return self._match("GET" if method == "HEAD" else method, path)[0]

    def _inject_fault(self, route: str) -> None:
        with self._lock:
            for fault in self.faults:
                if fault.route == route:
                    self._consume(fault)
                    raise HubHTTPError(fault.status, f"injected fault: {route} answers {fault.status}")

    def _consume(self, fault: Fault) -> None:
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                self.faults.remove(fault)

    # ------------------------------------------------------------------------------------- helpers

    def _auth(self, request: Request) -> bool:
        """True with the server's token, False without a token; a wrong token is refused outright."""
        header = request.headers.get("Authorization", "")
        if not header:
            return False
        if header != f"Bearer {self.token}":
            raise HubHTTPError(401, "Invalid credentials in Authorization header")
        return True

    def _repo(self, kind: str, repo_id: str) -> Repo:
        try:
            return self.repos[(kind, repo_id)]
        except KeyError:
            raise HubHTTPError(404, f"{kind} repository {repo_id} not found", "RepoNotFound") from None

    def _readable(self, request: Request, kind: str, repo_id: str) -> Repo:
        authenticated = self._auth(request)
        repo = self.repos.get((kind, repo_id))
        if repo is None or (repo.private and not authenticated):
            # The real Hub does not tell a private repository from a missing one.
            status = 404 if authenticated else 401
            raise HubHTTPError(status, "Repository not found", "RepoNotFound")
        return repo

    def _writable(self, request: Request, kind: str, repo_id: str) -> Repo:
        if not self._auth(request):
            raise HubHTTPError(401, "You must be authenticated to write to a repository")
        return self._readable(request, kind, repo_id)

    @staticmethod
    def _at(repo: Repo, revision: str) -> Commit:
        oid = repo.branches.get(revision, revision)
        if oid not in repo.commits:
            raise HubHTTPError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.commits[oid]

    def _new_commit(self, repo: Repo, parent: str | None, title: str, files: dict[str, Blob]) -> Commit:
        digest = hashlib.sha1(f"{repo.repo_id}\n{parent}\n{title}\n{next(self._counter)}".encode())
        for path in sorted(files):
            digest.update(f"{path} {files[path].git_oid}\n".encode())
        commit = Commit(digest.hexdigest(), parent, title, files)
        repo.commits[commit.oid] = commit
        return commit

    def _base(self, repo: Repo) -> str:
        return f"{self.url}/{'datasets/' if repo.kind == 'dataset' else ''}{repo.repo_id}"

    # ------------------------------------------------------------------------------------- routes

    def _on_create(self, request: Request, _: dict) -> Response:
        if not self._auth(request):
            raise HubHTTPError(401, "Invalid username or password.")
        body = request.get_json()
        kind = body.get("type") or "model"
        if kind not in ("model", "dataset"):
            raise HubHTTPError(400, f"repository type {kind!r} is not served by the local Hub")
        repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
        with self._lock:
            if (kind, repo_id) in self.repos:
                repo = self.repos[(kind, repo_id)]
                raise HubHTTPError(409, f"You already created this {kind} repo", url=self._base(repo))
            repo = Repo(kind, repo_id, private=body.get("visibility") == "private")
            initial = self._new_commit(
                repo, None, "initial commit", {".gitattributes": Blob(GITATTRIBUTES.encode(), False)}
            )
            repo.branches["main"] = initial.oid
            self.repos[(kind, repo_id)] = repo
        return _json({"url": self._base(repo), "name": repo_id, "id": repo_id})

    def _on_validate_yaml(self, request: Request, _: dict) -> Response:
        content = request.get_json().get("content", "")
        match = re.match(r"^---\n(.*?)\n---", content, re.DOTALL)
        try:
            if match:
                yaml.safe_load(match.group(1))
        except yaml.YAMLError as error:
            return _json({"errors": [{"message": f"invalid YAML: {error}"}]}, status=400)
        return _json({"errors": [], "warnings": []})

    def _on_info(self, request: Request, groups: dict) -> Response:
        kind = _KIND_OF_PLURAL[groups["kind"]]
        with self._lock:
            repo = self._readable(request, kind, groups["repo"])
            commit = self._at(repo, unquote(groups["rev"] or "main"))
            blobs = _flag(request.args.get("blobs"))
            siblings = [_sibling(path, blob, blobs) for path, blob in sorted(commit.files.items())]
        info = {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.oid,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "lastModified": "2026-01-01T00:00:00.000Z",
            "createdAt": "2026-01-01T00:00:00.000Z",
            "siblings": siblings,
        }
        if kind == "model":
            info["modelId"] = repo.repo_id
        return _json(info)

    def _on_tree(self, request: Request, groups: dict) -> Response:
        kind = _KIND_OF_PLURAL[groups["kind"]]
        folder = unquote(groups["path"] or "").strip("/")
        recursive = _flag(request.args.get("recursive"))
        with self._lock:
            repo = self._readable(request, kind, groups["repo"])
            commit = self._at(repo, unquote(groups["rev"]))
            entries = _tree_entries(commit.files)
        if folder and entries.get(folder, {}).get("type") != "directory":
            raise HubHTTPError(404, f"{folder} does not exist at {commit.oid}", "EntryNotFound")
        prefix = f"{folder}/" if folder else ""
        listed = [
            entry
            for path, entry in sorted(entries.items())
            if path.startswith(prefix) and (recursive or "/" not in path[len(prefix) :])
        ]
        return _json(listed)

    def _on_paths_info(self, request: Request, groups: dict) -> Response:
        kind = _KIND_OF_PLURAL[groups["kind"]]
        wanted = [path.strip("/") for path in request.form.getlist("paths")]
        with self._lock:
            repo = self._readable(request, kind, groups["repo"])
            entries = _tree_entries(self._at(repo, unquote(groups["rev"])).files)
        return _json([entries[path] for path in wanted if path in entries])

    def _on_refs(self, request: Request, groups: dict) -> Response:
        with self._lock:
            repo = self._readable(request, _KIND_OF_PLURAL[groups["kind"]], groups["repo"])
            branches = [
                {"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid}
                for name, oid in repo.branches.items()
            ]
        return _json({"branches": branches, "converts": [], "tags": []})

    def _on_branch(self, request: Request, groups: dict) -> Response:
        branch = unquote(groups["rev"])
        with self._lock:
            repo = self._writable(request, _KIND_OF_PLURAL[groups["kind"]], groups["repo"])
            if branch in repo.branches:
                raise HubHTTPError(409, f"Reference refs/heads/{branch} already exists")
            start = (request.get_json(silent=True) or {}).get("startingPoint") or "main"
            repo.branches[branch] = self._at(repo, start).oid
        return _json({})

    def _on_preupload(self, request: Request, groups: dict) -> Response:
        with self._lock:
            repo = self._writable(request, _KIND_OF_PLURAL[groups["kind"]], groups["repo"])
            current = self._at(repo, unquote(groups["rev"])).files
        patterns = _lfs_patterns(current.get(".gitattributes"))
        answers = []
        for item in request.get_json()["files"]:
            sample = base64.b64decode(item["sample"])
            lfs = item["size"] >= LFS_THRESHOLD or b"\0" in sample or _matches(item["path"], patterns)
            answer = {"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
            if item["path"] in current:
                blob = current[item["path"]]
                answer["oid"] = blob.sha256 if blob.lfs else blob.git_oid
            answers.append(answer)
        return _json({"files": answers, "commitOid": None})

    def _on_lfs_batch(self, request: Request, groups: dict) -> Response:
        kind = _KIND_OF_PREFIX[groups["prefix"]]
        with self._lock:
            self._writable(request, kind, groups["repo"])
            stored = set(self.lfs_store)
        objects = []
        for item in request.get_json()["objects"]:
            entry = {"oid": item["oid"], "size": item["size"], "authenticated": True}
            if item["oid"] not in stored:
                entry["actions"] = {"upload": {"href": f"{self.url}/lfs/{item['oid']}", "header": {}}}
            objects.append(entry)
        return _json({"transfer": "basic", "objects": objects}, content_type="application/vnd.git-lfs+json")

    def _on_lfs_upload(self, request: Request, groups: dict) -> Response:
        data = request.get_data()
        if hashlib.sha256(data).hexdigest() != groups["oid"]:
            raise HubHTTPError(400, f"uploaded content does not hash to {groups['oid']}")
        with self._lock:
            self.lfs_store[groups["oid"]] = data
        return Response(status=200)

    def _on_commit(self, request: Request, groups: dict) -> Response:
        """NDJSON lines: `header`, `file` (base64 content), `lfsFile`, `deletedFile`, `deletedFolder`."""
        branch = unquote(groups["rev"])
        lines = [json.loads(line) for line in request.get_data().splitlines() if line.strip()]
        with self._lock:
            repo = self._writable(request, _KIND_OF_PLURAL[groups["kind"]], groups["repo"])
            if branch not in repo.branches:
                raise HubHTTPError(
                    404, f"Invalid rev id: {branch} (commits go to a branch)", "RevisionNotFound"
                )
            parent = repo.branches[branch]
            header = next((line["value"] for line in lines if line["key"] == "header"), {})
            if header.get("parentCommit") not in (None, parent):
                raise HubHTTPError(
                    412, f"A commit has happened since {header['parentCommit']}, {branch} is at {parent}"
                )
            files = dict(repo.commits[parent].files)
            for line in lines:
                key, value = line["key"], line["value"]
                if key == "file":
                    try:
                        files[value["path"]] = Blob(
                            base64.b64decode(value["content"], validate=True), lfs=False
                        )
                    except binascii.Error as error:
                        raise HubHTTPError(400, f"{value['path']}: content is not base64 ({error})") from None
                elif key == "lfsFile":
                    if value["oid"] not in self.lfs_store:
                        raise HubHTTPError(
                            422, f"{value['path']}: LFS object {value['oid']} was never uploaded"
                        )
                    files[value["path"]] = Blob(self.lfs_store[value["oid"]], lfs=True)
                elif key == "deletedFile":
                    files.pop(value["path"], None)
                elif key == "deletedFolder":
                    folder = value["path"].rstrip("/") + "/"
                    files = {path: blob for path, blob in files.items() if not path.startswith(folder)}
                elif key != "header":
                    raise HubHTTPError(400, f"commit operation {key!r} is not served by the local Hub")
            commit = self._new_commit(repo, parent, header.get("summary", ""), files)
            repo.branches[branch] = commit.oid
        return _json(
            {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{self._base(repo)}/commit/{commit.oid}",
                "hookOutput": "",
                "pullRequestUrl": None,
            }
        )

    def _on_resolve(self, request: Request, groups: dict) -> Response:
        kind = _KIND_OF_PREFIX[groups["prefix"]]
        path = unquote(groups["path"])
        with self._lock:
            repo = self._readable(request, kind, groups["repo"])
            commit = self._at(repo, unquote(groups["rev"]))
            blob = commit.files.get(path)
            if blob is None:
                raise HubHTTPError(
                    404,
                    f"{path} does not exist at {commit.oid}",
                    "EntryNotFound",
                    {"X-Repo-Commit": commit.oid},
                )
            drop = next((f for f in self.faults if f.route == "drop" and f.path == path), None)
            if drop is not None and request.method == "GET":
                self._consume(drop)
        size = len(blob.data)
        headers = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{blob.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if blob.lfs:
            headers["X-Linked-Etag"] = f'"{blob.sha256}"'
            headers["X-Linked-Size"] = str(size)
        start, end, status = 0, size, 200
        if "Range" in request.headers:
            start, end = _parse_range(request.headers["Range"], size)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        headers["Content-Length"] = str(end - start)
        if request.method == "HEAD":
            return Response(status=status, headers=headers)
        if drop is None:
            return Response(blob.data[start:end], status=status, headers=headers)
        cut = max(start, min(end, size // 2 if drop.at is None else drop.at))
        # Fewer bytes than Content-Length, then the connection closes: the client sees a broken download.
        return Response(
            _cut_short(blob.data[start:cut]), status=status, headers=headers, direct_passthrough=True
        )


# ------------------------------------------------------------------------------------------ helpers


def _json(payload, status: int = 200, content_type: str = "application/json") -> Response:
    return Response(json.dumps(payload), status=status, content_type=content_type)


def _error_response(error: HubHTTPError) -> Response:
    headers = {"X-Error-Message": error.message, **error.headers}
    if error.code:
        headers["X-Error-Code"] = error.code
    return Response(
        json.dumps({"error": error.message, **error.body}),
        status=error.status,
        headers=headers,
        content_type="application/json",
    )


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


def _cut_short(data: bytes) -> Iterator[bytes]:
    if data:
        yield data


def _parse_range(header: str, size: int) -> tuple[int, int]:
    """`bytes=A-B`, `bytes=A-` or `bytes=-N` → [start, end); unsatisfiable → 416 as the Hub answers."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if not match or match.groups() == ("", ""):
        raise HubHTTPError(400, f"malformed Range header {header!r}")
    first, last = match.groups()
    if first == "":
        start, end = max(0, size - int(last)), size
    else:
        start, end = int(first), min(size, int(last) + 1) if last else size
    if start >= size or start >= end:
        raise HubHTTPError(
            416, f"Range {header} not satisfiable", headers={"Content-Range": f"bytes */{size}"}
        )
    return start, end


def _lfs_patterns(gitattributes: Blob | None) -> list[str]:
    if gitattributes is None:
        return []
    lines = gitattributes.data.decode(errors="replace").splitlines()
    return [line.split()[0] for line in lines if "filter=lfs" in line and line.split()]


def _matches(path: str, patterns: list[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(path, pattern) for pattern in patterns)


def _lfs_info(blob: Blob) -> dict:
    return {"oid": blob.sha256, "size": len(blob.data), "pointerSize": len(blob.pointer)}


def _sibling(path: str, blob: Blob, blobs: bool) -> dict:
    if not blobs:
        return {"rfilename": path}
    sibling = {"rfilename": path, "size": len(blob.data), "blobId": blob.git_oid}
    if blob.lfs:
        sibling["lfs"] = {"sha256": blob.sha256, "size": len(blob.data), "pointerSize": len(blob.pointer)}
    return sibling


def _tree_entries(files: dict[str, Blob]) -> dict[str, dict]:
    """Every file and every folder of a commit, as the tree and paths-info endpoints list them."""
    entries: dict[str, dict] = {}
    for path, blob in files.items():
        entry = {"type": "file", "path": path, "size": len(blob.data), "oid": blob.git_oid}
        if blob.lfs:
            entry["lfs"] = _lfs_info(blob)
        entries[path] = entry
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            oid = hashlib.sha1(f"tree {folder}".encode()).hexdigest()
            entries.setdefault(folder, {"type": "directory", "path": folder, "size": 0, "oid": oid})
    return entries
