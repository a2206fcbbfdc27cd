"""What a command wrote into the caches: `sweep --dry-run` lists it instead of claiming it wrote nothing.

Why: the dry run makes the checks a sweep makes, and some of them fill caches a sweep then
reuses (a dataset downloaded to check it exists, evaluator weights, real-data features for
relative thresholds): 53 MB of Fashion-MNIST once appeared under ~/.cache/harness/data
after a dry run that said it wrote nothing. Skipping those checks would let a dry run pass
that the sweep then fails, so the dry run makes them and says exactly what they cached.
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_roots(data_root: str | None = None) -> list[Path]:
    """Where the checks cache things: the data root (HARNESS_DATA_ROOT, or the experiment's
    data.root), the harness cache (HARNESS_CACHE: real features, classifiers) and torch.hub's
    folder (Inception weights)."""
    from ...data import default_data_root
    from ...evaluate import default_cache_dir
    roots = [default_data_root(), default_cache_dir()]
    if data_root:
        roots.append(Path(data_root).expanduser())
    try:
        import torch.hub
        roots.append(Path(torch.hub.get_dir()))
    except Exception:  # noqa: BLE001 - no torch hub: nothing cached there
        pass
    return roots


def snapshot(roots: list[Path]) -> dict[Path, tuple[int, int]]:
    """file -> (size, mtime_ns) under every root (each file once, however the roots nest)."""
    files: dict[Path, tuple[int, int]] = {}
    for root in roots:
        if not root.is_dir():
            continue
        for folder, _, names in os.walk(root):
            for name in names:
                path = Path(folder) / name
                try:
                    st = path.stat()
                except OSError:
                    continue
                files[path.resolve()] = (st.st_size, st.st_mtime_ns)
    return files


def written(before: dict[Path, tuple[int, int]], after: dict[Path, tuple[int, int]]) -> dict[Path, int]:
    """Files new or changed between two snapshots -> their size in bytes."""
    return {p: size for p, (size, mtime) in sorted(after.items()) if before.get(p) != (size, mtime)}


def describe(files: dict[Path, int], limit: int = 20) -> str:
    if not files:
        return "cached nothing"
    total = sum(files.values())
    lines = [f"  {p} ({size / 2**20:.1f} MB)" for p, size in list(files.items())[:limit]]
    if len(files) > limit:
        lines.append(f"  and {len(files) - limit} more files")
    return (f"cached {len(files)} files, {total / 2**20:.1f} MB, that the sweep reuses "
            "(delete them to undo):\n" + "\n".join(lines))
