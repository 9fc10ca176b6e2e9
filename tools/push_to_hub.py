#!/usr/bin/env python
"""Upload a model folder to the Hugging Face Hub and print the commit URL.

DIR is a folder written by `fd3d.hub.save_pretrained` (the trainer writes one): config.json,
model.safetensors and a README.md model card. Every file in DIR is uploaded. The repository is created
if needed (private with --private), and so is the branch given with --revision. The token defaults to
the one stored by `hf auth login` (or HF_TOKEN). HF_ENDPOINT selects another Hub (a mirror, an
Enterprise Hub, or the local Hub of the tests in tests/hub).

    python tools/push_to_hub.py --checkpoint work/apprentice --repo-id ORG/detr3d-cpu-fd3d
    python tools/push_to_hub.py --checkpoint DIR --repo-id ORG/NAME --private --revision experiments

Load it back anywhere with `fd3d.hub.from_pretrained("ORG/NAME")`. On failure (no such folder, refused
token, an upload or commit the Hub rejects, the network) the error is printed and the exit status is 2;
the folder is never modified, so the same command can simply be run again.
"""

from __future__ import annotations

import argparse
import sys

from fd3d.hub import HubError, push_to_hub


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", required=True, metavar="DIR", help="model folder to upload")
    parser.add_argument("--repo-id", required=True, metavar="ORG/NAME", help="Hub model repository")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--token", default=None, help="Hub token (default: the stored one or HF_TOKEN)")
    parser.add_argument(
        "--revision", default=None, metavar="BRANCH", help="branch to commit to (default main)"
    )
    args = parser.parse_args(argv)
    try:
        url = push_to_hub(
            args.checkpoint, args.repo_id, private=args.private, token=args.token, revision=args.revision
        )
    except HubError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
