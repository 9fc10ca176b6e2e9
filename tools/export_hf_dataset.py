"""Convert a nuScenes-format dataroot into Parquet shards that Hugging Face `datasets` streams.

Writes OUT/data/<split>/<scene>.parquet (one shard per scene, images kept as encoded bytes). Stream them
back with `fd3d.data.hf.stream_from_shards(OUT, split)`, i.e.
`datasets.load_dataset("parquet", data_files=..., streaming=True)`. The folder is a valid dataset
repository: `huggingface_hub.HfApi().upload_folder(repo_id=..., repo_type="dataset", folder_path=OUT)`.

Example:
    python tools/export_hf_dataset.py --dataroot work/data/mini --version v1.0-mini \\
        --out work/data/mini-parquet
"""

from __future__ import annotations

import argparse
import time

from fd3d.data.hf import SPLITS_OF_VERSION, export_parquet_shards


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataroot", required=True)
    parser.add_argument("--version", default="v1.0-mini", choices=sorted(SPLITS_OF_VERSION))
    parser.add_argument("--out", required=True, help="output folder (data/<split>/*.parquet)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    counts = export_parquet_shards(args.dataroot, args.version, args.out)
    summary = ", ".join(f"{split}: {n} samples" for split, n in counts.items())
    print(f"wrote {args.out} ({summary}) in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
