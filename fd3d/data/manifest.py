"""The manifest of an exported shard folder (`data/manifest.json`): every shard with its rows, its sample
tokens and its sha256, written by the export and checked by the stream.

Without it a folder of shards with the right file names but from another dataset trains silently (and
its evaluation then fails against the dataroot's tables after the last step), a bit flipped in an image
streams silently, and a truncated shard fails deep inside pyarrow without its name.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from fd3d.atomic import write_json_atomically
from fd3d.integrity import sha256_of

MANIFEST = "manifest.json"  # in the export's data/ folder
FORMAT = 1


class ShardError(ValueError):
    """A shard folder whose files do not match its manifest; names the shard and what differs."""


def shard_entry(path: Path, sample_tokens: Sequence[str]) -> dict:
    return {"rows": len(sample_tokens), "sha256": sha256_of(path), "sample_tokens": list(sample_tokens)}


def write_manifest(data_dir: Path, version: str, shards: dict[str, dict[str, dict]]) -> Path:
    """data_dir/manifest.json: {"format", "version", "splits": {split: {scene: shard_entry}}}."""
    content = {"format": FORMAT, "version": version, "splits": shards}
    return write_json_atomically(data_dir / MANIFEST, content)


def read_manifest(text: str, where: str) -> dict:
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as error:
        raise ShardError(f"{where} is not JSON ({error})") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or "splits" not in manifest:
        raise ShardError(f"{where} is not an fd3d shard manifest of format {FORMAT}")
    return manifest


def local_manifest(root: str | os.PathLike) -> dict:
    """The manifest of a local export folder; a folder without one is refused (re-export it)."""
    path = Path(root) / "data" / MANIFEST
    if not path.is_file():
        raise ShardError(
            f"{path} is missing: shards without a manifest cannot be checked; re-export them with "
            "tools/export_hf_dataset.py"
        )
    return read_manifest(path.read_text(), str(path))


def split_entries(manifest: dict, split: str, where: str) -> dict[str, dict]:
    entries = manifest["splits"].get(split)
    if entries is None:
        raise ShardError(f"{where} has no split {split!r}; it has {sorted(manifest['splits'])}")
    return entries


def check_shard_files(
    files: Sequence[str], entries: dict[str, dict], split: str, digests: dict[str, str | None]
) -> None:
    """The split's files are exactly the manifest's shards, with its digests (`digests[file]` None where the
    source cannot tell one without downloading the file: the Hub checks its LFS files by sha256 itself)."""
    names = {PurePosixPath(file).stem: file for file in files}
    missing, unlisted = sorted(set(entries) - set(names)), sorted(set(names) - set(entries))
    if missing or unlisted:
        raise ShardError(
            f"the {split!r} shards do not match the manifest: missing {missing[:5]}, "
            f"not listed {unlisted[:5]}"
        )
    for name, file in names.items():
        digest = digests.get(file)
        if digest is not None and digest != entries[name]["sha256"]:
            raise ShardError(
                f"shard {file} has changed since it was exported (sha256 {digest[:12]}... but the manifest "
                f"says {entries[name]['sha256'][:12]}...): truncated or corrupt; re-export or re-download it"
            )


def check_local_split(root: str | os.PathLike, split: str, files: Sequence[str]) -> None:
    """A local export's shard files of a split against its manifest, sha256 included."""
    entries = split_entries(local_manifest(root), split, f"the manifest of {root}")
    check_shard_files(files, entries, split, {file: shard_digest(file) for file in files})


def shard_digest(path: str) -> str:
    """sha256 of a shard, computed once per process for each (path, size, mtime): a training run builds
    its streams several times (the checks before step 1, training, every evaluation), and a rewritten
    shard has a new size or mtime."""
    stat = os.stat(path)
    return _digest(os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    return sha256_of(path)


def split_tokens(entries: dict[str, dict]) -> list[str]:
    """Every sample token of a split's shards, in shard order."""
    return [token for name in sorted(entries) for token in entries[name]["sample_tokens"]]
