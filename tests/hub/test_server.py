"""The local Hub answers as the real one does, checked through the clients: tree listings, paths-info,
refs, old commits, byte ranges, upload modes."""

from __future__ import annotations

from huggingface_hub import HfApi, HfFileSystem, hf_hub_download
from huggingface_hub.hf_api import RepoFile, RepoFolder

DATA = bytes(range(256)) * 64  # 16 KiB with NUL bytes: binary, so stored in LFS


def _make_repo(tmp_path) -> tuple[HfApi, str, str]:
    api = HfApi()
    api.create_repo("org/tree", repo_type="dataset")
    folder = tmp_path / "upload"
    (folder / "data" / "train").mkdir(parents=True)
    (folder / "data" / "train" / "part.bin").write_bytes(DATA)
    (folder / "notes.txt").write_text("first\n")
    first = api.upload_folder(folder_path=folder, repo_id="org/tree", repo_type="dataset").oid
    (folder / "notes.txt").write_text("second\n")
    api.upload_folder(folder_path=folder, repo_id="org/tree", repo_type="dataset")
    return api, "org/tree", first


def test_tree_paths_info_refs_and_old_commits(hub_server, tmp_path):
    api, repo_id, first = _make_repo(tmp_path)
    top = {entry.path: entry for entry in api.list_repo_tree(repo_id, repo_type="dataset")}
    assert sorted(top) == [".gitattributes", "data", "notes.txt"] and isinstance(top["data"], RepoFolder)
    every = {entry.path: entry for entry in api.list_repo_tree(repo_id, repo_type="dataset", recursive=True)}
    part = every["data/train/part.bin"]
    assert isinstance(part, RepoFile) and part.size == len(DATA) and part.lfs.size == len(DATA)
    assert {"data", "data/train"} <= set(every)
    infos = api.get_paths_info(repo_id, ["notes.txt", "data", "missing"], repo_type="dataset")
    assert [type(info) for info in infos] == [RepoFile, RepoFolder]
    assert [branch.name for branch in api.list_repo_refs(repo_id, repo_type="dataset").branches] == ["main"]
    assert api.dataset_info(repo_id).sha == hub_server.head(repo_id, repo_type="dataset") != first

    def notes(revision=None) -> str:
        path = hf_hub_download(repo_id, "notes.txt", repo_type="dataset", revision=revision)
        with open(path) as handle:
            return handle.read()

    assert notes() == "second\n" and notes(first) == "first\n"


def test_byte_ranges_through_hffilesystem(hub_server, tmp_path):
    _, repo_id, _ = _make_repo(tmp_path)
    with HfFileSystem().open(f"datasets/{repo_id}/data/train/part.bin", "rb", block_size=1024) as handle:
        handle.seek(5000)
        assert handle.read(300) == DATA[5000:5300]
    ranged = [status for method, path, status in hub_server.calls if path.endswith("part.bin")]
    assert ranged and set(ranged) == {206}
