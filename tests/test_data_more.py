"""deepgrad.Generator (torch.Generator's interface), random_split with fractions and generators, the
DataLoader's torch-only options (pin_memory, multiprocessing_context, ...) and torch's import paths
(deepgrad.utils.data)."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad.data import (
    DataLoader,
    RandomSampler,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    random_split,
)


def _same_error(ours, theirs):
    with pytest.raises(Exception) as expected:
        theirs()
    with pytest.raises(expected.type):
        ours()


# ----------------------------------------------------------------------------- Generator
def test_generator_seeds_like_torch():
    g, t = dg.Generator(), torch.Generator()
    assert g.initial_seed() == t.initial_seed()  # a fresh generator is deterministic in both
    assert g.manual_seed(7) is g and g.initial_seed() == t.manual_seed(7).initial_seed() == 7
    assert g.manual_seed(-1).initial_seed() == t.manual_seed(-1).initial_seed() == 2**64 - 1
    fresh = g.seed()
    assert g.initial_seed() == fresh and 0 <= fresh < 2**64
    assert str(g.device) == "cpu" and isinstance(g, np.random.Generator)
    for bad in (1.5, True, "3", 2**64):
        _same_error(lambda bad=bad: dg.Generator().manual_seed(bad), lambda bad=bad: torch.Generator().manual_seed(bad))


def test_generator_streams_are_independent_and_reproducible():
    a = dg.randn(5, generator=dg.Generator().manual_seed(3))
    dg.manual_seed(0)  # the global seed has nothing to do with it
    g = dg.Generator().manual_seed(3)
    b = dg.randn(5, generator=g)
    assert np.array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(dg.randn(5, generator=g).numpy(), b.numpy())
    perm = dg.randperm(10, generator=dg.Generator().manual_seed(1))
    assert sorted(perm.tolist()) == list(range(10))
    assert perm.tolist() == dg.randperm(10, generator=dg.Generator().manual_seed(1)).tolist()


def test_generator_state_round_trips_and_clones():
    g = dg.Generator().manual_seed(11)
    g.random(3)
    state = g.get_state()
    assert state.dtype == np.uint8 and state.shape == (48,)
    first = dg.rand(4, generator=g).numpy()
    g.set_state(state)
    assert np.array_equal(dg.rand(4, generator=g).numpy(), first)
    g.set_state(state)
    clone, copied = g.clone_state(), copy.deepcopy(g)
    assert type(copied) is dg.Generator and copied.initial_seed() == clone.initial_seed() == 11
    assert np.array_equal(dg.rand(4, generator=clone).numpy(), first)
    assert np.array_equal(dg.rand(4, generator=copied).numpy(), first)
    with pytest.raises(RuntimeError, match="48 bytes"):
        g.set_state(dg.zeros(3))


# ----------------------------------------------------------------------------- random_split, samplers, loader
@pytest.mark.parametrize("n,fractions", [(10, [0.5, 0.5]), (11, [0.3, 0.3, 0.4]), (7, [0.1, 0.2, 0.7]),
                                         (5, [1 / 3] * 3), (10, [1, 0])])
def test_random_split_sizes_match_torch(n, fractions):
    with warnings.catch_warnings(record=True) as ours_w:
        warnings.simplefilter("always")
        ours = [len(s) for s in random_split(range(n), fractions, generator=dg.Generator().manual_seed(0))]
    with warnings.catch_warnings(record=True) as theirs_w:
        warnings.simplefilter("always")
        theirs = [len(s) for s in torch.utils.data.random_split(range(n), fractions)]
    assert ours == theirs
    assert len(ours_w) == len(theirs_w)  # torch warns about each empty split; so does deepgrad


def test_random_split_is_fixed_by_its_generator():
    ds = TensorDataset(np.arange(20))
    first = random_split(ds, [0.75, 0.25], generator=dg.Generator().manual_seed(5))
    dg.manual_seed(123)
    again = random_split(ds, [0.75, 0.25], generator=dg.Generator().manual_seed(5))
    assert [s.indices for s in first] == [s.indices for s in again]
    assert sorted(first[0].indices + first[1].indices) == list(range(20))
    _same_error(lambda: random_split(ds, [0.5, 0.6]), lambda: torch.utils.data.random_split(range(20), [0.5, 0.6]))
    _same_error(lambda: random_split(ds, [3, 3]), lambda: torch.utils.data.random_split(range(20), [3, 3]))


def test_samplers_and_loader_take_a_generator():
    ds = TensorDataset(np.arange(12))

    def order(make):
        return [int(i) for batch in make() for i in batch[0].tolist()]

    def seeded():
        return dg.Generator().manual_seed(2)

    for make in (lambda: DataLoader(ds, batch_size=5, shuffle=True, generator=seeded()),
                 lambda: DataLoader(ds, batch_size=5, sampler=RandomSampler(ds, generator=seeded())),
                 lambda: DataLoader(ds, batch_size=5, sampler=SubsetRandomSampler(range(12), generator=seeded()))):
        a, b = order(make), order(make)
        assert a == b and sorted(a) == list(range(12)) and a != list(range(12))
    weighted = WeightedRandomSampler([0.0, 1.0, 1.0], 20, generator=dg.Generator().manual_seed(4))
    assert set(weighted) <= {1, 2}


def test_loader_accepts_torchs_positional_signature_and_memory_options():
    ds = TensorDataset(np.arange(6.0))
    # dataset, batch_size, shuffle, sampler, batch_sampler, num_workers, collate_fn, pin_memory, drop_last,
    # timeout, worker_init_fn, multiprocessing_context, generator: torch's order
    loader = DataLoader(ds, 4, False, None, None, 0, None, True, True, 0, None, None, dg.Generator())
    assert loader.pin_memory and loader.drop_last and len(loader) == 1
    assert [b[0].tolist() for b in loader] == [[0.0, 1.0, 2.0, 3.0]]
    threaded = DataLoader(ds, batch_size=2, num_workers=2, multiprocessing_context="spawn", persistent_workers=True,
                          pin_memory=True, pin_memory_device="cuda", in_order=False)
    assert [b[0].tolist() for b in threaded] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    for kwargs in (dict(persistent_workers=True), dict(multiprocessing_context="spawn"),
                   dict(num_workers=1, multiprocessing_context="threads")):
        _same_error(lambda kw=kwargs: DataLoader(ds, **kw),
                    lambda kw=kwargs: torch.utils.data.DataLoader(range(6), **kw))


def test_utils_data_is_deepgrad_data():
    import deepgrad.utils.data as ud
    from deepgrad.utils.data.dataloader import default_collate
    from deepgrad.utils.data.distributed import DistributedSampler
    from deepgrad.utils.data.sampler import BatchSampler

    assert ud.DataLoader is dg.data.DataLoader and ud.random_split is dg.data.random_split
    assert default_collate is dg.data.default_collate and BatchSampler is dg.data.BatchSampler
    assert DistributedSampler is dg.distributed.DistributedSampler
    assert set(dg.data.__all__) <= set(ud.__all__)
    assert dg.utils.data.TensorDataset is TensorDataset


# ----------------------------------------------------------------------------- iterable datasets
def _counting(lib, n=7, sharded=True):
    """The same stream in both libraries: 0..n-1, split between workers when ``sharded``."""
    base = lib.utils.data.IterableDataset

    class Count(base):
        def __iter__(self):
            info = lib.utils.data.get_worker_info()
            if info is None or not sharded:
                return iter(range(n))
            return iter(range(info.id, n, info.num_workers))

        def __len__(self):
            return n

    return Count()


@pytest.mark.parametrize("kwargs", [dict(batch_size=3), dict(batch_size=2, num_workers=2),
                                    dict(batch_size=2, num_workers=3, drop_last=True), dict(batch_size=None),
                                    dict(batch_size=None, num_workers=2), dict(batch_size=4, num_workers=2)])
@pytest.mark.parametrize("sharded", [True, False])
@pytest.mark.filterwarnings("ignore:Length of IterableDataset")  # torch's note on unsharded workers
def test_iterable_dataset_batches_like_torch(kwargs, sharded):
    ours = [np.asarray(b).tolist() for b in DataLoader(_counting(dg, sharded=sharded), **kwargs)]
    theirs = [np.asarray(b).tolist() for b in torch.utils.data.DataLoader(_counting(torch, sharded=sharded),
                                                                          **kwargs)]
    assert ours == theirs  # same batches, same order (unsharded workers repeat the stream, as torch's do)
    assert len(DataLoader(_counting(dg), **kwargs)) == len(torch.utils.data.DataLoader(_counting(torch), **kwargs))


def test_iterable_dataset_rules_workers_and_resume():
    from deepgrad.data import ChainDataset, IterableDataset, StackDataset, get_worker_info

    seen = []
    loader = DataLoader(_counting(dg, n=6), batch_size=2, num_workers=2,
                        worker_init_fn=lambda wid: seen.append((wid, get_worker_info().num_workers)))
    assert [b.tolist() for b in loader] == [[0, 2], [1, 3], [4], [5]] and sorted(seen) == [(0, 2), (1, 2)]
    for option in (dict(shuffle=True), dict(sampler=[0, 1]), dict(batch_sampler=[[0]])):
        _same_error(lambda o=option: DataLoader(_counting(dg), **o),
                    lambda o=option: torch.utils.data.DataLoader(_counting(torch), **o))

    class Endless(IterableDataset):
        def __iter__(self):
            return iter(range(100))

    with pytest.raises(TypeError, match="has no len"):
        len(DataLoader(Endless()))
    chained = ChainDataset([_counting(dg, n=2), _counting(dg, n=3)])
    assert [int(x) for x in chained] == [0, 1, 0, 1, 2] and len(chained) == 5
    assert [int(x) for x in _counting(dg, n=2) + _counting(dg, n=1)] == [0, 1, 0]
    stacked = StackDataset(range(3), "abc")
    assert stacked[2] == (2, "c") and len(stacked) == 3
    assert StackDataset(x=range(2), y="ab")[1] == {"x": 1, "y": "b"}
    _same_error(lambda: StackDataset(range(2), "abc"), lambda: torch.utils.data.StackDataset(range(2), "abc"))
    # resume: a state_dict taken after two batches continues with the third
    first = DataLoader(_counting(dg, n=9), batch_size=2, num_workers=2)
    it = iter(first)
    done = [next(it).tolist(), next(it).tolist()]
    fresh = DataLoader(_counting(dg, n=9), batch_size=2, num_workers=2)
    fresh.load_state_dict(first.state_dict())
    rest = [b.tolist() for b in fresh]
    assert done + rest == [b.tolist() for b in DataLoader(_counting(dg, n=9), batch_size=2, num_workers=2)]


def test_map_style_workers_know_who_they_are():
    from deepgrad.data import Dataset, get_worker_info

    class Who(Dataset):
        def __getitem__(self, i):
            info = get_worker_info()
            return np.array([-1 if info is None else info.id, -1 if info is None else info.num_workers])

        def __len__(self):
            return 8

    assert {tuple(r) for b in DataLoader(Who(), batch_size=2) for r in b.tolist()} == {(-1, -1)}
    ids = {tuple(r) for b in DataLoader(Who(), batch_size=2, num_workers=2) for r in b.tolist()}
    assert ids <= {(0, 2), (1, 2)} and ids
    assert get_worker_info() is None
