"""Run under mpiexec -n K: checks all_reduce / broadcast / all_gather / object collectives on every rank."""

import numpy as np

import deepgrad as dg
import deepgrad.distributed as dist

dist.init_process_group("mpi")
rank, world = dist.get_rank(), dist.get_world_size()
assert dist.is_initialized() and dist.get_backend() == "mpi"
assert dist.is_main_process() == (rank == 0)

# all_reduce with every op, float and int
base = np.arange(6, dtype=np.float32).reshape(2, 3)
for op, expect in [
    (dist.ReduceOp.SUM, sum(base + r for r in range(world))),
    (dist.ReduceOp.AVG, sum(base + r for r in range(world)) / world),
    (dist.ReduceOp.MAX, base + world - 1),
    (dist.ReduceOp.MIN, base),
    (dist.ReduceOp.PRODUCT, np.prod([base + r for r in range(world)], axis=0)),
]:
    t = dg.tensor(base + rank)
    dist.all_reduce(t, op=op)
    np.testing.assert_allclose(t.numpy(), expect, rtol=1e-6, err_msg=f"all_reduce {op}")
ti = dg.tensor(np.array([rank + 1, 10 * (rank + 1)], dtype=np.int64))
dist.all_reduce(ti)
assert ti.tolist() == [sum(range(1, world + 1)), 10 * sum(range(1, world + 1))], ti

# non-contiguous tensor: reduced values land in the original view's layout
big = dg.tensor(np.arange(12, dtype=np.float64).reshape(3, 4) * (rank + 1))
view = big.T
assert not view.array.flags.c_contiguous
dist.all_reduce(view)
np.testing.assert_allclose(view.numpy(), (np.arange(12.0).reshape(3, 4) * sum(range(1, world + 1))).T)

# async all_reduce
t = dg.tensor(np.full(1000, float(rank), dtype=np.float32))
work = dist.all_reduce(t, async_op=True)
assert work.wait()
assert work.is_completed()
np.testing.assert_allclose(t.numpy(), np.full(1000, sum(range(world)), dtype=np.float32))

# broadcast from the last rank
src = world - 1
t = dg.tensor(np.full((2, 2), float(rank), dtype=np.float32))
dist.broadcast(t, src=src)
assert (t.numpy() == src).all(), t

# all_gather into a list and into one tensor
mine = dg.tensor(np.array([rank, rank * 2], dtype=np.float32))
out = [dg.zeros(2) for _ in range(world)]
dist.all_gather(out, mine)
for r, o in enumerate(out):
    assert o.tolist() == [r, 2 * r], (r, o)
flat = dg.zeros(2 * world)
dist.all_gather_into_tensor(flat, mine)
assert flat.tolist() == [v for r in range(world) for v in (r, 2 * r)]

objs = [None] * world
dist.all_gather_object(objs, {"rank": rank})
assert objs == [{"rank": r} for r in range(world)]
lst = [rank, "x"] if rank == 0 else [None, None]
dist.broadcast_object_list(lst, src=0)
assert lst == [0, "x"]

# bad input is a clear error
try:
    dist.all_gather([dg.zeros(2)], mine) if world > 1 else None
    assert world == 1
except ValueError as e:
    assert "one per rank" in str(e)
try:
    dist.broadcast(mine, src=world)
    raise AssertionError("broadcast accepted an invalid src")
except ValueError as e:
    assert "src" in str(e)

dist.barrier()
dist.destroy_process_group()
assert not dist.is_initialized()
print(f"OK collectives rank {rank}/{world}", flush=True)
