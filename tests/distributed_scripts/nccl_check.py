"""NCCL backend end to end with the ranks present (1 without mpiexec): collectives and a DDP step on the GPU."""

import numpy as np

import deepgrad as dg
import deepgrad.distributed as dist
from deepgrad import nn, optim
from deepgrad.distributed import DistributedDataParallel

dist.init_process_group("nccl")
rank, world = dist.get_rank(), dist.get_world_size()
t = dg.tensor(np.full(5, rank + 1.0, dtype=np.float32), device="cuda")
dist.all_reduce(t)
assert np.allclose(t.cpu().numpy(), sum(range(1, world + 1)))
dist.broadcast(t, src=0)
out = [dg.zeros(5, device="cuda") for _ in range(world)]
dist.all_gather(out, t)
dist.barrier()

rng = np.random.default_rng(0)
x, y = rng.standard_normal((8, 6)).astype(np.float32), rng.integers(0, 3, 8)
dg.manual_seed(0)
ref = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
dg.manual_seed(0)
model = DistributedDataParallel(nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).to("cuda"),
                                bucket_cap_mb=0.0002)
opt = optim.SGD(model.parameters(), lr=0.1)
nn.CrossEntropyLoss()(model(dg.tensor(x, device="cuda")), dg.tensor(y, device="cuda")).backward()
nn.CrossEntropyLoss()(ref(dg.tensor(x)), dg.tensor(y)).backward()
for p, q in zip(ref.parameters(), model.module.parameters()):
    np.testing.assert_allclose(q.grad.cpu().numpy(), p.grad.numpy(), rtol=1e-4, atol=1e-6)
opt.step()
dist.destroy_process_group()
print(f"OK nccl rank {rank}/{world}", flush=True)
