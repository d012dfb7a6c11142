"""``deepgrad.distributed``: data-parallel training across processes and machines over MPI (CPU) or NCCL (GPU).

The transport is an existing engine, not a home-made one: MPI through ``mpi4py`` for NumPy arrays, NCCL
through CuPy (``cupy.cuda.nccl``) for GPU arrays. ``torch.distributed`` names and semantics.

A training script (the same file runs on every rank)::

    import deepgrad.distributed as dist
    from deepgrad.distributed import DistributedDataParallel, DistributedSampler

    dist.init_process_group("mpi")                 # "nccl" on GPUs
    model = DistributedDataParallel(Net())         # same initial weights everywhere (rank 0's)
    sampler = DistributedSampler(train_set, shuffle=True, seed=0)
    loader = DataLoader(train_set, batch_size=32, sampler=sampler)   # 32 per rank
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for x, y in loader:
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()        # gradients averaged over ranks, overlapped with backward
            optimizer.step()
    if dist.is_main_process():
        save(model.module.state_dict(), "model.safetensors")

or hand the model to a Trainer with ``callbacks=[DistributedCallback()]`` (see :mod:`.training`).

Launching, one machine (K processes, one BLAS thread each)::

    deepgrad launch -n 4 train.py --epochs 10
    mpiexec -n 4 python train.py --epochs 10       # the same, by hand (set OMP_NUM_THREADS=1)

Several machines: the same Python environment and script path on every machine, password-less ssh
between them, and a host file with one ``hostname:slots`` line per machine (MPICH; Open MPI writes
``hostname slots=N``)::

    $ cat hosts
    node1:8
    node2:8
    deepgrad launch -n 16 --hostfile hosts train.py         # = mpiexec -n 16 --hostfile hosts python train.py

Over Ethernet, pick the interface with ``mpiexec -iface eth0`` (MPICH) or ``FI_TCP_IFACE``; NCCL reads
``NCCL_SOCKET_IFNAME``. For NCCL the ranks still start under mpiexec: MPI passes NCCL its unique id.

The MPI runtime: ``pip install 'deepgrad[distributed]'`` installs ``mpi4py`` and the ``mpich`` wheel.
mpi4py's binary wheel is built against the MPI ABI and loads ``libmpi`` at import: it looks in
``<sys.prefix>/lib`` first, where the mpich wheel puts ``libmpi.so.12`` (no variable to set in a venv),
and the mpich wheel installs the matching ``mpiexec`` (Hydra) next to ``python``. To use a system MPI
instead (e.g. Debian's OpenMPI), point mpi4py at it with ``MPI4PY_LIBMPI=/path/to/libmpi.so`` and launch
with that MPI's own mpiexec (``deepgrad launch --mpiexec``): the library and the launcher must match.
"""

from .collectives import (
    ReduceOp,
    Work,
    all_gather,
    all_gather_into_tensor,
    all_gather_object,
    all_reduce,
    barrier,
    broadcast,
    broadcast_object_list,
    destroy_process_group,
    get_backend,
    get_rank,
    get_world_size,
    init_process_group,
    is_available,
    is_initialized,
    is_main_process,
    is_mpi_available,
    is_nccl_available,
)
from .ddp import DistributedDataParallel
from .sampler import DistributedSampler
from .sync_batchnorm import SyncBatchNorm

__all__ = [
    "DistributedDataParallel", "DistributedSampler", "SyncBatchNorm", "DistributedCallback", "ReduceOp", "Work",
    "all_gather", "all_gather_into_tensor", "all_gather_object", "all_reduce", "barrier", "broadcast",
    "broadcast_object_list", "destroy_process_group", "get_backend", "get_rank", "get_world_size",
    "init_process_group", "is_available", "is_initialized", "is_main_process", "is_mpi_available",
    "is_nccl_available", "add_launch_parser", "all_reduce_logs",
]


def __getattr__(name: str):
    # Loaded on first use: the trainer integration imports deepgrad.train (importing deepgrad.distributed
    # stays light), and `python -m deepgrad.distributed.launch` must not find launch already imported.
    if name in ("DistributedCallback", "all_reduce_logs"):
        from . import training

        return getattr(training, name)
    if name == "add_launch_parser":
        import importlib

        return importlib.import_module(".launch", __name__).add_launch_parser
    raise AttributeError(f"module 'deepgrad.distributed' has no attribute {name!r}")
