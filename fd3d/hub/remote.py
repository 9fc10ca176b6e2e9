"""Models on the Hugging Face Hub: where a model location points, downloading it, pushing a folder.

`resolve_folder` takes either a local folder or a Hub id. The rule, applied in this order:

1. a `pathlib.Path` (any non-`str`) is always a local folder;
2. a string naming an existing directory is that local folder (a local folder wins over a Hub id);
3. a string of the form `name` or `org/name` (letters, digits, `-`, `_`, `.`; each part starts with a
   letter or digit; no `--` or `..`) is a Hub id and is downloaded with `snapshot_download`;
4. anything else (`/abs/path`, `./x`, `~/x`, `a/b/c`, backslashes, ...) is a local path that does not
   exist: `HubError` "not found", with no network access.

Every failure is a `HubError` that names the folder or repository, the cause, and what to do instead.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from huggingface_hub import HfApi, constants, get_token, snapshot_download
from huggingface_hub import errors as hf_errors

from fd3d.hub.errors import HubError, describe, http_status
from fd3d.hub.folder import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, check_model_folder, read_config

# Errors of huggingface_hub calls: connection and HTTP errors (httpx), OSError (RepositoryNotFound,
# LocalEntryNotFound, OfflineModeIsEnabled, missing token...) and ValueError (HFValidationError).
_HUB_FAILURES = (OSError, ValueError, hf_errors.HTTPError)
# A failed LFS upload reaches the caller as RuntimeError("Error while uploading 'x' to the Hub.") with the
# HTTP error as its __cause__; nothing else in an upload raises RuntimeError, so a push catches it too.
_PUSH_FAILURES = (*_HUB_FAILURES, RuntimeError)
_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_hub_id(text: str) -> bool:
    return bool(_HUB_ID.match(text)) and "--" not in text and ".." not in text


def resolve_folder(repo_or_dir: str | os.PathLike, revision: str | None = None) -> Path:
    """The local folder of a model: `repo_or_dir` itself, or the Hub snapshot it names (module docstring)."""
    text = os.fspath(repo_or_dir)
    if not text:
        raise HubError("empty model location: pass a local model folder or a Hub id (org/name)")
    local = Path(text).expanduser()
    if local.is_dir():
        if revision is not None:
            raise HubError(
                f"revision {revision!r} given for the local folder {local}: revisions are for Hub ids"
            )
        return local
    if local.exists():
        raise HubError(f"{local} is a file, not a model folder (expected a folder with {CONFIG_NAME})")
    if not isinstance(repo_or_dir, str) or not is_hub_id(text):
        raise HubError(
            f"model folder not found: {local} (a string of the form `name` or `org/name` that is not an "
            "existing folder is read as a Hub id; this one is a path)"
        )
    try:
        snapshot = snapshot_download(
            text,
            revision=revision,
            allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, CARD_NAME],
            library_name="fd3d",
        )
    except _HUB_FAILURES as error:
        raise HubError(_download_failure(text, revision, error)) from error
    return Path(snapshot)


def _download_failure(repo_id: str, revision: str | None, error: Exception) -> str:
    """What went wrong and what to do, by cause: a missing revision, a repository that is missing or
    refused (private or gated), a partial cached copy, or the Hub out of reach (offline, network, 5xx)."""
    where = f"{repo_id!r} at revision {revision!r}" if revision else repr(repo_id)
    if isinstance(error, hf_errors.RevisionNotFoundError):
        return (
            f"the Hub repo {repo_id!r} has no revision {revision or constants.DEFAULT_REVISION!r}: give a "
            f"branch, a tag or a full commit sha of that repo ({describe(error)})"
        )
    if isinstance(error, hf_errors.RepositoryNotFoundError) or http_status(error) in (401, 403):
        access = (
            "the token in use may not read it"
            if get_token()
            else "no token was sent (set HF_TOKEN or run `hf auth login`)"
        )
        return (
            f"could not get the model {where} from the Hugging Face Hub: the repo does not exist, or it is "
            f"private or gated and {access} ({describe(error)})"
        )
    if isinstance(error, hf_errors.IncompleteSnapshotError):
        return (
            f"could not get the model {where}: its cached copy is incomplete (an interrupted download) and "
            "the Hub could not be reached to finish it; nothing was loaded. Retry once the Hub is reachable "
            f"({describe(error)})"
        )
    offline = (
        " (HF_HUB_OFFLINE is set, so only the local cache was searched)" if constants.HF_HUB_OFFLINE else ""
    )
    broken = (
        " Nothing was loaded: a broken download leaves no partial file, so a retry starts it cleanly."
        if isinstance(error, hf_errors.HTTPError)  # connection dropped or refused, timeout, 5xx
        else ""
    )
    rev = f" --revision {revision}" if revision else ""
    return (
        f"could not get the model {where} from the Hugging Face Hub{offline}: {describe(error)}.{broken} No "
        f"local folder {repo_id!r} exists either. To use a local folder instead, download it where the Hub "
        f"is reachable with `hf download {repo_id}{rev} --local-dir DIR` and pass DIR"
    )


def push_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    revision: str | None = None,
    commit_message: str = "Upload fd3d model",
) -> str:
    """Upload a model folder (as written by `save_pretrained`, every file in it) to `repo_id`; the commit URL.

    The repository is created if needed (`private` applies only then), and so is the branch `revision`.
    """
    path = Path(folder).expanduser()
    check_model_folder(path)
    read_config(path / CONFIG_NAME)
    if not is_hub_id(repo_id):
        raise HubError(
            f"invalid Hub repo id {repo_id!r}: expected `name` or `org/name`; the folder {path} is intact"
        )
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id, folder_path=path, commit_message=commit_message, revision=revision
        )
    except _PUSH_FAILURES as error:
        where = f"{repo_id!r} (branch {revision!r})" if revision else repr(repo_id)
        cause = describe(error)
        if isinstance(error, RuntimeError) and error.__cause__ is not None:
            cause += f" ({describe(error.__cause__)})"
        if http_status(error) in (401, 403) or http_status(error.__cause__) in (401, 403):
            refused = "the Hub refused the token in use" if token or get_token() else "no token was sent"
            cause += f"; {refused}: pass a write token (HF_TOKEN, `hf auth login` or --token)"
        raise HubError(
            f"could not push to the Hub repo {where}: {cause}; the folder {path} is intact"
        ) from error
    return commit.commit_url
