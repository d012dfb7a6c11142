"""deepgrad.distributed pieces that need no MPI run: DistributedSampler (vs torch), launch command line,
errors outside a process group, SyncBatchNorm's single-process behaviour."""

import argparse

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.distributed as dist
from deepgrad import nn
from deepgrad.distributed import DistributedSampler, SyncBatchNorm
from deepgrad.distributed.launch import add_launch_parser, build_command


# ----------------------------------------------------------------------------- DistributedSampler
@pytest.mark.parametrize("n, world", [(10, 2), (11, 2), (10, 3), (2, 4), (7, 1)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_matches_torch_without_shuffle(n, world, drop_last):
    torch_sampler = pytest.importorskip("torch.utils.data").DistributedSampler
    for rank in range(world):
        ours = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=False, drop_last=drop_last)
        theirs = torch_sampler(range(n), num_replicas=world, rank=rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs) == len(list(ours))


@pytest.mark.parametrize("n, world", [(20, 2), (23, 2), (23, 3), (5, 4)])
def test_sampler_covers_the_dataset_once_per_epoch(n, world):
    seen_orders = []
    for epoch in range(3):
        shards = []
        for rank in range(world):
            s = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=7)
            s.set_epoch(epoch)
            shards.append(list(s))
        assert len({len(s) for s in shards}) == 1, "every rank gets the same number of samples"
        flat = [i for s in shards for i in s]
        assert set(flat) == set(range(n)), "every sample is seen in the epoch"
        padding = len(flat) - n
        assert padding == (-n) % world, "only the padding to a multiple of the world size repeats"
        assert len(set(flat)) == n
        seen_orders.append(shards[0])
    assert seen_orders[0] != seen_orders[1], "set_epoch reshuffles"


def test_sampler_is_deterministic_and_drop_last_drops_the_tail():
    a = DistributedSampler(range(23), num_replicas=2, rank=1, seed=3)
    b = DistributedSampler(range(23), num_replicas=2, rank=1, seed=3)
    assert list(a) == list(b) and list(a) != list(DistributedSampler(range(23), 2, 1, seed=4))
    shards = [list(DistributedSampler(range(23), 2, r, seed=3, drop_last=True)) for r in range(2)]
    flat = shards[0] + shards[1]
    assert len(flat) == 22 and len(set(flat)) == 22


def test_sampler_errors():
    with pytest.raises(ValueError, match="Invalid rank 2"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(range(4))


def test_sampler_in_a_dataloader():
    from deepgrad.data import DataLoader, TensorDataset

    ds = TensorDataset(np.arange(10, dtype=np.float32)[:, None], np.arange(10))
    loader = DataLoader(ds, batch_size=3, sampler=DistributedSampler(ds, 2, 0, shuffle=False))
    assert [yb.tolist() for _, yb in loader] == [[0, 2, 4], [6, 8]]


# ----------------------------------------------------------------------------- launch
def test_build_command_and_cli_parser(tmp_path):
    cmd = build_command(3, "train.py", ["--epochs", "2"], mpiexec="/opt/mpi/bin/mpiexec")
    assert cmd[:3] == ["/opt/mpi/bin/mpiexec", "-n", "3"]
    assert cmd[-3:] == ["train.py", "--epochs", "2"]
    hosts = tmp_path / "hosts"
    hosts.write_text("node1:4\nnode2:4\n")
    cmd = build_command(8, "train.py", [], hostfile=str(hosts), mpiexec="mpiexec")
    assert cmd[cmd.index("--hostfile") + 1] == str(hosts)
    with pytest.raises(FileNotFoundError, match="host file"):
        build_command(2, "train.py", [], hostfile=str(tmp_path / "missing"), mpiexec="mpiexec")
    with pytest.raises(ValueError, match="positive"):
        build_command(0, "train.py", [], mpiexec="mpiexec")

    parser = argparse.ArgumentParser(prog="deepgrad")
    add_launch_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["launch", "-n", "2", "--hostfile", "h", "train.py", "--lr", "0.1", "-n", "5"])
    assert (args.nprocs, args.hostfile, args.script) == (2, "h", "train.py")
    assert args.script_args == ["--lr", "0.1", "-n", "5"]
    assert callable(args.handler)


# ----------------------------------------------------------------------------- outside a process group
def test_calls_before_init_process_group_raise():
    assert not dist.is_initialized() and dist.is_main_process()
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.get_rank()
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.all_reduce(dg.zeros(2))
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.DistributedDataParallel(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="unknown backend"):
        dist.init_process_group("gloo")


def test_sync_batchnorm_alone_is_batchnorm_and_conversion_keeps_the_model():
    dg.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 2))
    ref_state = {k: v.array.copy() for k, v in model.state_dict().items()}
    x = dg.randn(4, 2, 4, 4)
    expected = model(x)
    model.load_state_dict({k: dg.tensor(v) for k, v in ref_state.items()})
    converted = SyncBatchNorm.convert_sync_batchnorm(model)
    assert isinstance(converted[1], SyncBatchNorm) and list(converted.state_dict()) == list(ref_state)
    out = converted(x)
    np.testing.assert_allclose(out.array, expected.array, rtol=1e-6)
    with pytest.raises(ValueError, match="channels"):
        SyncBatchNorm(5)(dg.randn(2, 3))
