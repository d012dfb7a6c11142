"""Run under `deepgrad launch -n K`: Trainer + DDP + DistributedSampler + DistributedCallback.

Checks: training equals one process stepping on the union of the ranks' batches; the epoch loss in the
history is the loss over every rank's samples; histories and weights agree across ranks; only rank 0
writes files and shows progress. argv[1]: a scratch directory.
"""

import os
import sys

import numpy as np

import deepgrad as dg
import deepgrad.distributed as dist
from deepgrad import nn, optim
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.distributed import DistributedCallback, DistributedDataParallel, DistributedSampler
from deepgrad.train import ProgressBar, Trainer

dist.init_process_group("mpi")
rank, world = dist.get_rank(), dist.get_world_size()
scratch = sys.argv[1]
EPOCHS, BATCH, N = 2, 5, 10 * world + 3  # not a multiple of world: the sampler pads
rng = np.random.default_rng(0)
X = rng.standard_normal((N, 6)).astype(np.float32)
Y = rng.integers(0, 3, N)
train_set, val_set = TensorDataset(X, Y), TensorDataset(X[:8], Y[:8])


def make():
    dg.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))


model = DistributedDataParallel(make())
sampler = DistributedSampler(train_set, shuffle=True, seed=3)
loader = DataLoader(train_set, batch_size=BATCH, sampler=sampler)
val_loader = DataLoader(val_set, batch_size=4, sampler=DistributedSampler(val_set, shuffle=False))
log_dir = os.path.join(scratch, f"rank{rank}")
trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.2, momentum=0.5),
                  metrics=["accuracy"], callbacks=[DistributedCallback()], log_dir=log_dir, progress=True)
assert any(isinstance(c, ProgressBar) for c in trainer.callbacks) == (rank == 0)
history = trainer.fit(loader, val_loader, epochs=EPOCHS)

# the same training in one process: each step uses the union of the ranks' batches
ref = make()
opt = optim.SGD(ref.parameters(), lr=0.2, momentum=0.5)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(EPOCHS):
    shards = []
    for r in range(world):
        s = DistributedSampler(train_set, num_replicas=world, rank=r, shuffle=True, seed=3)
        s.set_epoch(epoch)
        shards.append(list(s))
    loss_sum, count = 0.0, 0
    for start in range(0, len(shards[0]), BATCH):
        with dg.no_grad():
            for shard in shards:
                idx = shard[start:start + BATCH]
                loss_sum += float(loss_fn(ref(dg.tensor(X[idx])), dg.tensor(Y[idx])).item()) * len(idx)
                count += len(idx)
        opt.zero_grad()
        # mean over the global batch = the average of the per-rank means (equal shard sizes)
        total = None
        for shard in shards:
            idx = shard[start:start + BATCH]
            part = loss_fn(ref(dg.tensor(X[idx])), dg.tensor(Y[idx])) * (1.0 / world)
            total = part if total is None else total + part
        total.backward()
        opt.step()
    np.testing.assert_allclose(history["loss"][epoch], loss_sum / count, rtol=1e-5,
                               err_msg=f"epoch {epoch}: the history's loss must cover every rank's samples")
for (name, p), q in zip(ref.named_parameters(), model.module.parameters()):
    np.testing.assert_allclose(q.array, p.array, rtol=1e-4, atol=1e-6, err_msg=f"parameter {name}")

histories = [None] * world
dist.all_gather_object(histories, history.history)
assert all(h == history.history for h in histories), "every rank must log the same (reduced) history"
assert set(history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}, history.history
written = os.listdir(log_dir) if os.path.isdir(log_dir) else []
assert bool(written) == (rank == 0), f"rank {rank} wrote {written}"
print(f"OK trainer rank {rank}/{world} loss={history['loss'][-1]:.4f}", flush=True)
dist.destroy_process_group()
