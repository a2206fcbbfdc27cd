"""Train and check the domain classifier that the `fmnist-classifier` evaluator measures with.

Run once by the maintainers; the weights and a JSON of figures ship in
harness/evaluate/weights/ so that every user measures with the same network. The JSON
records what a user needs to read a score: test accuracy, IS of real test data (the
ceiling a generator can approach), FID between real train and real test (the floor).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from harness.data import get_dataset_spec, load_images, to_unit_range
from harness.errors import UsageError
from harness.evaluate.base import CLASSIFIER_DATASETS
from harness.evaluate.classifier import (
    FIDELITY_NAME,
    SmallCNN,
    default_weights_path,
    ensure_registered,
    load_classifier,
)

TRAIN_COMMAND = "python -m harness evaluator train {dataset}"
CHECK_N = 10_000  # real images per side for the shipped IS / FID figures


def _check_dataset(dataset: str) -> None:
    get_dataset_spec(dataset)
    if dataset not in CLASSIFIER_DATASETS:
        raise UsageError(f"dataset: no shipped classifier for {dataset!r}; supported: "
                         f"{', '.join(CLASSIFIER_DATASETS)}")


@torch.no_grad()
def classifier_accuracy(net, x_uint8, y, batch_size: int = 1000, device="cpu") -> float:
    correct = 0
    for i in range(0, len(x_uint8), batch_size):
        logits = net(to_unit_range(x_uint8[i:i + batch_size], device))
        correct += (logits.argmax(1).cpu() == y[i:i + batch_size]).sum().item()
    return correct / len(x_uint8)


def train_classifier(dataset: str = "fashion_mnist", seed: int = 0, out_dir=None, epochs: int = 6,
                     batch_size: int = 128, lr: float = 2e-3, device="cpu") -> dict:
    """Seeded training (Adam, cosine LR, horizontal flips); writes <dataset>_classifier.pt and .json."""
    _check_dataset(dataset)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x_tr, y_tr = load_images(dataset, "train")
    x_te, y_te = load_images(dataset, "test")
    x_tr = to_unit_range(x_tr, device)
    y_tr = y_tr.to(device)
    net = SmallCNN().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps_per_epoch = len(x_tr) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    t0 = time.time()
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(x_tr), generator=g).to(device)
        flips = (torch.rand(len(x_tr), generator=g) < 0.5).to(device)
        total = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * batch_size:(s + 1) * batch_size]
            xb = x_tr[idx]
            xb = torch.where(flips[idx].view(-1, 1, 1, 1), xb.flip(3), xb)
            loss = F.cross_entropy(net(xb), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        net.eval()
        acc = classifier_accuracy(net, x_te, y_te, device=device)
        print(f"epoch {epoch + 1}/{epochs}  loss {total / steps_per_epoch:.4f}  test acc {acc:.4f}  "
              f"{time.time() - t0:.0f}s", flush=True)
    out_dir = Path(out_dir) if out_dir is not None else default_weights_path(dataset).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{dataset}_classifier.pt"
    torch.save({k: v.detach().cpu().clone() for k, v in net.state_dict().items()}, weights)
    info = {
        "dataset": dataset,
        "weights": weights.name,
        "test_accuracy": round(acc, 4),
        "n_test": len(x_te),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "architecture": "harness.evaluate.classifier.SmallCNN() defaults",
        "parameters": sum(p.numel() for p in net.parameters()),
        "torch_version": torch.__version__,
        "train_seconds": round(time.time() - t0, 1),
        "training_command": TRAIN_COMMAND.format(dataset=dataset),
        "torch_fidelity_extractor": FIDELITY_NAME,
    }
    _write_json(out_dir / f"{dataset}_classifier.json", info)
    return info


def check_classifier(dataset: str = "fashion_mnist", weights_path=None, n: int = CHECK_N, device="cpu",
                     record: bool = False) -> dict:
    """Measure the shipped network: test accuracy, IS(real test), FID/KID(real train, real test).

    Read-only unless `record`: then the figures are written into the weights' JSON file
    (the shipped figures change only when someone asks for it)."""
    import torch_fidelity

    from harness.evaluate.fidelity import UInt8Dataset

    _check_dataset(dataset)
    weights = Path(weights_path) if weights_path is not None else default_weights_path(dataset)
    net = load_classifier(weights, device=device)
    x_tr, _ = load_images(dataset, "train", limit=n)
    x_te, y_te = load_images(dataset, "test")
    acc = classifier_accuracy(net, x_te, y_te, device=device)
    x_te = x_te[:n]
    m = torch_fidelity.calculate_metrics(
        input1=UInt8Dataset(x_te), input2=UInt8Dataset(x_tr), isc=True, fid=True, kid=True,
        feature_extractor=ensure_registered(), feature_extractor_weights_path=str(weights),
        kid_subset_size=min(1000, n), cuda=str(device).startswith("cuda"), cache=False, batch_size=500,
        save_cpu_ram=True, verbose=False)
    figures = {
        "test_accuracy": round(acc, 4),
        "is_real_test": round(m["inception_score_mean"], 4),
        "is_real_test_n": len(x_te),
        "fid_train_test": round(m["frechet_inception_distance"], 4),
        "kid_train_test": round(m["kernel_inception_distance_mean"], 6),
        "fid_n_train": len(x_tr),
        "fid_n_test": len(x_te),
        "fid_train_subset": f"first {len(x_tr)} of the train split",
        "check_command": f"python -m harness evaluator check {dataset}",
        "check_torch_version": torch.__version__,
    }
    path = weights.with_suffix(".json")
    info = json.loads(path.read_text()) if path.exists() else {}
    info.update(figures)
    if record:
        _write_json(path, info)
    return info


def _write_json(path: Path, info: dict) -> None:
    path.write_text(json.dumps(info, indent=2, sort_keys=False) + "\n")
