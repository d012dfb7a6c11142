"""Run under mpiexec -n K: DDP over K ranks == one process on the global batch (grads every step, params after)."""

import numpy as np

import deepgrad as dg
import deepgrad.distributed as dist
from deepgrad import nn, optim
from deepgrad.distributed import DistributedDataParallel, SyncBatchNorm

dist.init_process_group("mpi")
rank, world = dist.get_rank(), dist.get_world_size()
STEPS, PER_RANK = 4, 4
GLOBAL = PER_RANK * world
rng = np.random.default_rng(0)
X = rng.standard_normal((STEPS, GLOBAL, 2, 5, 5)).astype(np.float32)
Y = rng.integers(0, 3, (STEPS, GLOBAL))
loss_fn = nn.CrossEntropyLoss()


def make_model(bn: bool, seed: int) -> nn.Module:
    dg.manual_seed(seed)
    layers = [nn.Conv2d(2, 4, 3, padding=1)]
    layers += [nn.BatchNorm2d(4)] if bn else []
    layers += [nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 8), nn.Tanh(), nn.Linear(8, 3)]
    return nn.Sequential(*layers)


def flat_params(model) -> np.ndarray:
    return np.concatenate([p.array.ravel() for p in model.parameters()])


for case in ("plain", "syncbn", "accumulate", "one_bucket"):
    bn = case == "syncbn"
    ref = make_model(bn, seed=0)
    # ranks other than 0 start from different weights: DDP must broadcast rank 0's
    inner = make_model(bn, seed=0 if rank == 0 else 1000 + rank)
    if bn:
        inner = SyncBatchNorm.convert_sync_batchnorm(inner)
        assert isinstance(inner[1], SyncBatchNorm) and list(dict(inner.named_parameters())) == \
            list(dict(ref.named_parameters())), "convert_sync_batchnorm must keep the layer order"
    cap = 25.0 if case == "one_bucket" else 0.0005  # ~500 bytes: several buckets
    model = DistributedDataParallel(inner, bucket_cap_mb=cap)
    assert (len(model.bucket_sizes) == 1) == (case == "one_bucket"), model.bucket_sizes
    ref_opt = optim.SGD(ref.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for s in range(STEPS):
        ref_opt.zero_grad()
        loss_fn(ref(dg.tensor(X[s])), dg.tensor(Y[s])).backward()
        shard = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
        x, y = dg.tensor(X[s][shard]), dg.tensor(Y[s][shard])
        opt.zero_grad()
        if case == "accumulate":  # two micro-batches; the first one's backward skips communication
            half = PER_RANK // 2
            with model.no_sync():
                (loss_fn(model(x[:half]), y[:half]) * 0.5).backward()
            (loss_fn(model(x[half:]), y[half:]) * 0.5).backward()
        else:
            loss_fn(model(x), y).backward()
        # no explicit synchronisation call: backward itself left the averaged gradients in .grad
        for (name, p), q in zip(ref.named_parameters(), model.module.parameters()):
            np.testing.assert_allclose(q.grad.array, p.grad.array, rtol=1e-4, atol=1e-6,
                                       err_msg=f"{case}: gradient of {name} at step {s}")
        ref_opt.step()
        opt.step()
    for (name, p), q in zip(ref.named_parameters(), model.module.parameters()):
        np.testing.assert_allclose(q.array, p.array, rtol=1e-4, atol=1e-6, err_msg=f"{case}: parameter {name}")
    if bn:
        for (name, b), c in zip(ref.named_buffers(), model.module.buffers()):
            np.testing.assert_allclose(c.array, b.array, rtol=1e-4, atol=1e-6, err_msg=f"{case}: buffer {name}")
    mine = flat_params(model)
    everyone = [dg.zeros(mine.size) for _ in range(world)]
    dist.all_gather(everyone, dg.tensor(mine))
    for r, other in enumerate(everyone):
        assert np.array_equal(other.numpy(), mine), f"{case}: rank {r}'s parameters differ from rank {rank}'s"
    assert model.comm_wait_time >= 0.0
    assert list(model.state_dict())[0].startswith("module."), "state_dict keys carry the module. prefix (torch)"
    print(f"OK {case} rank {rank}/{world} buckets={len(model.bucket_sizes)}", flush=True)

dist.destroy_process_group()
