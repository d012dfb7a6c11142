"""Run under mpiexec -n K: parameters that get no gradient (on some ranks, or on all) never hang DDP.

Rank 0 uses head_b, the other ranks do not; `never` is used by no rank. Modes:
find_unused_parameters=True (automatic), False + finish_gradient_synchronization(), and False without
it: the next forward raises (the step is still open), and the ranks recover by finishing it.
"""

import numpy as np

import deepgrad as dg
import deepgrad.distributed as dist
from deepgrad import nn, optim
from deepgrad.distributed import DistributedDataParallel

dist.init_process_group("mpi")
rank, world = dist.get_rank(), dist.get_world_size()
rng = np.random.default_rng(0)
X = rng.standard_normal((world, 3, 4)).astype(np.float32)


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Linear(4, 4)
        self.head_a = nn.Linear(4, 2)
        self.head_b = nn.Linear(4, 2)
        self.never = nn.Linear(4, 2)

    def forward(self, x, use_b: bool):
        h = self.trunk(x).tanh()
        out = self.head_a(h)
        return out + self.head_b(h) if use_b else out


def make(seed=0):
    dg.manual_seed(seed)
    return Branchy()


def expected_grads() -> dict:
    """The average over ranks of each rank's local gradient (a missing one counts as zero)."""
    total = {}
    for r in range(world):
        m = make()
        m(dg.tensor(X[r]), use_b=(r == 0)).pow(2).mean().backward()
        for name, p in m.named_parameters():
            if p.grad is not None:
                total[name] = total.get(name, 0) + p.grad.array / world
    return total


want = expected_grads()
assert "never.weight" not in want and "head_b.weight" in want
for mode in ("find_unused", "finish", "error_then_finish"):
    model = DistributedDataParallel(make(0 if rank == 0 else 7), bucket_cap_mb=0.0001,
                                    find_unused_parameters=(mode == "find_unused"))
    opt = optim.SGD(model.parameters(), lr=0.1)
    for step in range(2):
        opt.zero_grad()
        model(dg.tensor(X[rank]), use_b=(rank == 0)).pow(2).mean().backward()
        if mode == "finish":
            model.finish_gradient_synchronization()
        elif mode == "error_then_finish":  # `never` is unused everywhere: every rank left the step open
            try:
                model(dg.tensor(X[rank]), use_b=False)
                raise AssertionError("a forward with an unfinished reduction must raise")
            except RuntimeError as e:
                assert "never" in str(e) and "find_unused_parameters" in str(e), e
            model.finish_gradient_synchronization()
        if step == 0:
            for name, p in model.module.named_parameters():
                if name in want:
                    np.testing.assert_allclose(p.grad.array, want[name], rtol=1e-5, atol=1e-7,
                                               err_msg=f"{mode}: gradient of {name}")
                else:
                    assert p.grad is None, f"{mode}: {name} is unused on every rank, its grad must stay None"
        opt.step()
    flat = np.concatenate([p.array.ravel() for p in model.parameters()])
    gathered = [dg.zeros(flat.size) for _ in range(world)]
    dist.all_gather(gathered, dg.tensor(flat))
    assert all(np.array_equal(g.numpy(), flat) for g in gathered), f"{mode}: ranks diverged"
    print(f"OK {mode} rank {rank}/{world}", flush=True)
dist.destroy_process_group()
