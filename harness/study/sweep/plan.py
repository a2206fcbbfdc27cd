"""Which trials a sweep runs, in which order, and what each asks Ray for. No Ray import.

--shard I/N (I = 1..N) keeps every N-th (architecture, seed) group, so all objectives of
one architecture stay in one shard; costliest trials go first, so that the last trials
of a sweep are short and no core idles while one long trial finishes; with GPUs each
trial asks for 1 / trials_per_gpu of one, or a larger share if its memory estimate says
it would not fit beside the others (Ray does not check memory).
"""
from __future__ import annotations


from ...config import Experiment
from ...device import gpu_memory_bytes  # noqa: F401 (the driver's and tests' name for it)
from ...errors import UsageError
from ...remedies.base import samples_per_input
from ...trial import Trial, data_shape, dataset_bytes, objective_for, z_dim
from .packing import estimate_trial_bytes, gpu_share


def parse_shard(text: str | None) -> tuple[int, int]:
    if text is None:
        return 1, 1
    try:
        i, n = (int(p) for p in str(text).split("/"))
    except ValueError:
        raise UsageError(f"--shard: expected I/N such as 1/4, got {text!r}") from None
    if n < 1 or not 1 <= i <= n:
        raise UsageError(f"--shard: I/N needs 1 <= I <= N, got {text!r}")
    return i, n


def shard_trials(trials: list[Trial], i: int, n: int) -> list[Trial]:
    """The I-th of N shares: (architecture, seed) groups in experiment order, every N-th from I."""
    groups: dict[tuple, int] = {}
    for t in trials:
        groups.setdefault((t.arch.id, t.seed), len(groups))
    return [t for t in trials if groups[(t.arch.id, t.seed)] % n == i - 1]


def pairs_first(exp: Experiment, trials: list[Trial]) -> list[Trial]:
    """The order trials start in: (architecture, seed) groups in experiment order, and in each
    group the costliest first ((D steps per iteration + 1) x depth x filters^2).

    Why groups: a sweep stopped part-way (a session's end, a reclaimed machine) then leaves
    whole groups, whose objectives the report can pair, instead of every costly WGAN trial
    and none of their partners; long studies are resumed over several sessions. The price:
    at the very end one slot may idle while the last group's costliest trial finishes."""
    def cost(t: Trial) -> float:
        a = t.arch
        return (objective_for(exp, t.objective).settings.n_critic + 1) * (
            a.depth_g * a.filters_g ** 2 + a.depth_d * a.filters_d ** 2)
    group: dict[tuple, int] = {}
    for t in trials:
        group.setdefault((t.arch.id, t.seed), len(group))
    return sorted(trials, key=lambda t: (group[(t.arch.id, t.seed)], -cost(t)))   # stable: ties keep experiment order


def trial_resources(exp: Experiment, cluster: dict) -> dict:
    """CPU-only: cpus_per_trial cores; with GPUs (and device not cpu): also 1/trials_per_gpu GPU."""
    res = {"cpu": exp.resources.cpus_per_trial}
    if cluster.get("GPU", 0) > 0 and exp.train.device != "cpu":
        res["gpu"] = 1.0 / exp.resources.trials_per_gpu
    if res["cpu"] > cluster.get("CPU", 0):
        raise UsageError(f"resources.cpus_per_trial: {res['cpu']} is more than the {cluster.get('CPU', 0):g} "
                         "CPUs of the Ray cluster")
    return res


def trial_gpu_shares(exp: Experiment, trials: list[Trial], gpu_bytes: int | None) -> dict[str, float]:
    """Each trial's GPU fraction: 1/trials_per_gpu unless its memory estimate needs more."""
    base = 1.0 / exp.resources.trials_per_gpu
    if gpu_bytes is None:
        return {t.id: base for t in trials}
    shape, z, data = data_shape(exp), z_dim(exp), dataset_bytes(exp)
    cache: dict[tuple, float] = {}
    shares = {}
    for t in trials:
        objective = objective_for(exp, t.objective)
        d_norm, draw = objective.settings.d_norm, exp.budget.batch_size * samples_per_input(objective.remedies)
        key = (t.arch, d_norm, draw)
        if key not in cache:   # packing: G makes batch x M samples per step (conservative for D)
            need = estimate_trial_bytes(t.arch, shape, draw, z, d_norm, dataset_bytes=data)
            cache[key] = gpu_share(need, gpu_bytes, exp.resources.trials_per_gpu)
        shares[t.id] = cache[key]
    return shares
