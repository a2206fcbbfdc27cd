"""Where and how a trial computes (harness/device.py)."""
import torch

from harness import device


def test_auto_precision_is_bf16_for_images_only_on_cpus_with_bf16_units(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(device, "native_bf16_cpu", lambda: True)
    assert device.resolve_precision("auto", cpu, image=True) == torch.bfloat16
    assert device.resolve_precision("auto", cpu, image=False) is None          # the 2D MLPs stay fp32
    assert device.use_channels_last(cpu, True, torch.bfloat16) and not device.use_channels_last(cpu, True, None)
    monkeypatch.setattr(device, "native_bf16_cpu", lambda: False)
    assert device.resolve_precision("auto", cpu, image=True) is None
    assert device.resolve_precision("auto", cuda, image=False) == torch.bfloat16
    assert device.resolve_precision("fp32", cuda) is None and device.resolve_precision("bf16", cpu) == torch.bfloat16
    assert device.use_channels_last(cuda, True, None) and not device.use_channels_last(cuda, False, torch.bfloat16)
