"""`python -m harness bench`: how fast the harness trains, against a plain PyTorch loop.

For each reference configuration (DCGAN-based G and D, relu G / lrelu D, norm on, base
filters 64 depth 8 and base filters 128 depth 20; objectives gan and wgan-gp; batch 64;
32x32x1 data) it measures, in one run:

- generator iterations/s of one harness trial alone: `train.Session.iteration` and
  `loss_meter.LossMeter`, the loop body every trial runs, driven as `train`'s loop drives it
  (real batches by random index from a uint8 tensor resident on the device, losses read
  back every `check_every` steps), timed after warm-up (runners.py);
- the same for a plain PyTorch reference loop: fp32, the same networks (built by
  harness.nets), the same hyperparameters, written as a user would write it (D forward on
  real and fake, loss.backward(), opt.step(), G step through a D that is not frozen,
  .item() every step) and sharing no other harness code;
- the aggregate of N concurrent trials (separate spawned processes sharing the device,
  started together at a barrier after warm-up, each timing a fixed number of iterations):
  the sum of their iterations inside the common window [last start, first end] divided by
  the window's length, for both the harness and the reference (timing.py);
- FLOPs of one generator iteration (n_critic D steps + the G step) with
  torch.utils.flop_counter, hence achieved TFLOP/s and a share of the device's peak;
- evaluation cost: IS/FID/KID of the fmnist-classifier evaluator on n generated samples
  with the real features already cached (and the one-off real-feature extraction);
- the share of a real trial's wall time spent outside training (`run_trial`: setup,
  evaluation, sample grid); the sweep path's own overhead (Ray, MLflow) is not measured;
- on CUDA (full mode), torch.compile: compile time against the speed gain (figures.py).

On a machine without a GPU it runs a reduced CPU version (filters and batch scaled
down, 2 processes, a few iterations) that checks the machinery, not the targets. Results
go to results/bench/<device>[-quick].md and .json, the device named as it really is.
"""
from .plan import peak_for
from .run import device_slug, run_bench
from .timing import aggregate_rate

__all__ = ["aggregate_rate", "device_slug", "peak_for", "run_bench"]
