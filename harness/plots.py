"""Pictures a person would rather look at than read: sample grids and 2D scatters."""
from __future__ import annotations

from pathlib import Path

import torch


def save_samples(samples: torch.Tensor, path: str | Path, modes: torch.Tensor | None = None) -> Path:
    """uint8 images (N, C, H, W) become a grid PNG; 2D points (N, 2) a scatter PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if samples.dim() == 4:
        from torchvision.utils import make_grid, save_image
        nrow = max(1, int(len(samples) ** 0.5))
        save_image(make_grid(samples.float() / 255.0, nrow=nrow, padding=1), path)
        return path
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    pts = samples.float().cpu()
    ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.5, label="generated")
    if modes is not None:
        ax.scatter(modes[:, 0], modes[:, 1], s=30, marker="x", c="red", label="modes")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
