"""deepgrad.data: datasets, samplers, collate and the DataLoader (coverage, seeding, resume, prefetch, errors)."""

import json
import threading
import time
from collections import Counter, namedtuple

import numpy as np
import pytest

import deepgrad as dg
from deepgrad.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    TransformDataset,
    WeightedRandomSampler,
    current_generator,
    default_collate,
    random_split,
)
from deepgrad.data import transforms as T


class IndexDataset(Dataset):
    """Item i is (i as float array, i) through the per-sample path (no fast batch path)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range")
        return np.full(2, i, np.float32), int(i)


class NoisyDataset(Dataset):
    """Each read draws from current_generator(): exposes where the randomness comes from."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.float32(i) + current_generator().random(3).astype(np.float32), i


def labels(loader):
    return [int(v) for batch in loader for v in batch[-1].numpy()]


def as_arrays(batches):
    return [tuple(np.array(t.numpy()) for t in b) for b in batches]


@pytest.mark.parametrize("n", [10, 17])
@pytest.mark.parametrize("batch_size", [1, 3, 4, 32])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
def test_every_sample_once_per_epoch(n, batch_size, shuffle, drop_last):
    dg.manual_seed(1)
    for ds in (TensorDataset(np.arange(n, dtype=np.float32), np.arange(n)), IndexDataset(n)):
        loader = DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
        full, rest = divmod(n, batch_size)
        assert len(loader) == (full if drop_last else full + (rest > 0))
        for _ in range(2):
            batches = list(loader)
            assert len(batches) == len(loader)
            sizes = [len(b[1]) for b in batches]
            expected = [batch_size] * full + ([rest] if rest and not drop_last else [])
            assert sizes == expected
            seen = labels(batches)
            assert len(seen) == len(set(seen))  # nothing twice
            if not drop_last:
                assert sorted(seen) == list(range(n))  # everything once
            else:
                assert len(seen) == full * batch_size
            if not shuffle:
                assert seen == list(range(len(seen)))
            for xb, yb in batches:  # inputs stay with their labels
                np.testing.assert_array_equal(np.asarray(xb).reshape(len(yb), -1)[:, 0], yb.numpy())


def test_shuffle_is_seeded_and_changes_each_epoch():
    ds = TensorDataset(np.arange(50))
    dg.manual_seed(7)
    a = DataLoader(ds, batch_size=8, shuffle=True)
    run1 = [labels(a) for _ in range(3)]
    dg.manual_seed(7)
    b = DataLoader(ds, batch_size=8, shuffle=True)
    run2 = [labels(b) for _ in range(3)]
    assert run1 == run2
    assert run1[0] != run1[1] != run1[2]
    dg.manual_seed(8)
    assert labels(DataLoader(ds, batch_size=8, shuffle=True)) != run1[0]
    # An own generator makes the order independent of the global generator.
    own = [labels(DataLoader(ds, batch_size=8, shuffle=True, generator=3)) for _ in range(2)]
    dg.manual_seed(99)
    assert own[0] == own[1] == labels(DataLoader(ds, batch_size=8, shuffle=True, generator=3))


def _resume_case(make_loader, epochs=3, stop_epoch=1, stop_batch=2, seed=0):
    """Uninterrupted run vs a run stopped mid-epoch and resumed from the loader/global RNG state."""
    dg.manual_seed(seed)
    loader = make_loader()
    full = [as_arrays(loader) for _ in range(epochs)]

    dg.manual_seed(seed)
    loader = make_loader()
    for _ in range(stop_epoch):
        list(loader)
    it = iter(loader)
    for _ in range(stop_batch):
        next(it)
    saved = json.loads(json.dumps(loader.state_dict()))  # plain data: survives a JSON checkpoint
    global_state = dg.get_rng_state()
    del it, loader
    dg.manual_seed(12345)  # a fresh process: unrelated global state until restored

    resumed = make_loader()
    resumed.load_state_dict(saved)
    dg.set_rng_state(global_state)
    rest = [as_arrays(resumed)] + [as_arrays(resumed) for _ in range(epochs - stop_epoch - 1)]
    expected = [full[stop_epoch][stop_batch:]] + full[stop_epoch + 1:]
    assert len(rest) == len(expected)
    for got_epoch, want_epoch in zip(rest, expected):
        assert len(got_epoch) == len(want_epoch)
        for got, want in zip(got_epoch, want_epoch):
            for g, w in zip(got, want):
                np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("generator", [None, 11])
@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_mid_epoch_is_exact(generator, num_workers):
    noisy = NoisyDataset(23)
    aug = TransformDataset(TensorDataset(np.random.default_rng(0).random((23, 1, 6, 6), dtype=np.float32),
                                         np.arange(23)),
                           T.Compose([T.RandomHorizontalFlip(), T.RandomCrop(6, padding=1), T.GaussianNoise(std=0.1)]))
    for ds in (noisy, aug):
        _resume_case(lambda ds=ds: DataLoader(ds, batch_size=4, shuffle=True, generator=generator,
                                              num_workers=num_workers))


def test_resume_with_sampler_that_owns_a_generator():
    ds = NoisyDataset(19)
    _resume_case(lambda: DataLoader(ds, batch_size=5, sampler=RandomSampler(ds, generator=4)), stop_batch=3)
    weights = np.linspace(0.1, 1.0, 19)
    _resume_case(lambda: DataLoader(ds, batch_size=3, sampler=WeightedRandomSampler(weights, 30, generator=2)))


def test_state_after_a_finished_epoch_starts_the_next():
    ds = TensorDataset(np.arange(12))
    loader = DataLoader(ds, batch_size=5, shuffle=True, generator=0)
    first = labels(loader)
    state = loader.state_dict()
    assert state["current_epoch"] is None and state["epochs_started"] == 1
    second = labels(loader)
    other = DataLoader(ds, batch_size=5, shuffle=True, generator=123)
    other.load_state_dict(state)
    assert labels(other) == second != first
    with pytest.raises(ValueError, match="generator"):
        DataLoader(ds, batch_size=5, shuffle=True).load_state_dict(state)


@pytest.mark.parametrize("num_workers,prefetch_factor", [(1, 1), (3, 2), (4, 3)])
def test_prefetch_threads_give_the_same_batches(num_workers, prefetch_factor):
    rng = np.random.default_rng(0)
    base = TensorDataset(rng.random((37, 3, 8, 8), dtype=np.float32), np.arange(37))
    aug = T.Compose([T.RandomAffine(15, translate=(0.1, 0.1), scale=(0.9, 1.1)), T.RandomErasing(p=0.5),
                     T.ColorJitter(0.2, 0.2, 0.2, 0.05), T.GaussianNoise(std=0.05)])
    ds = TransformDataset(base, aug)
    dg.manual_seed(3)
    plain = DataLoader(ds, batch_size=5, shuffle=True)
    want = [as_arrays(plain) for _ in range(2)]
    dg.manual_seed(3)
    threaded = DataLoader(ds, batch_size=5, shuffle=True, num_workers=num_workers, prefetch_factor=prefetch_factor)
    got = [as_arrays(threaded) for _ in range(2)]
    for ge, we in zip(got, want):
        assert len(ge) == len(we)
        for g, w in zip(ge, we):
            np.testing.assert_array_equal(g[0], w[0])
            np.testing.assert_array_equal(g[1], w[1])


def test_prefetch_stops_threads_on_early_exit_and_calls_worker_init():
    before = threading.active_count()
    seen = []
    loader = DataLoader(IndexDataset(40), batch_size=2, num_workers=3, worker_init_fn=seen.append)
    for i, _ in enumerate(loader):
        if i == 2:
            break
    import gc

    gc.collect()
    deadline = time.time() + 5
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before
    assert sorted(seen) == list(range(len(seen))) and 1 <= len(seen) <= 3


def test_prefetch_timeout_and_worker_errors():
    class Slow(IndexDataset):
        def __getitem__(self, i):
            time.sleep(0.3)
            return super().__getitem__(i)

    with pytest.raises(RuntimeError, match="timed out"):
        list(DataLoader(Slow(2), batch_size=1, num_workers=1, timeout=0.02))

    class Broken(IndexDataset):
        def __len__(self):
            return self.n + 1  # claims one sample more than it has

    with pytest.raises(IndexError) as info:
        list(DataLoader(Broken(5), batch_size=2, num_workers=2))
    assert "dataset[5]" in "\n".join(info.value.__notes__) and "len(dataset) = 6" in "\n".join(info.value.__notes__)


def test_bad_input_errors():
    with pytest.raises(ValueError, match=r"size mismatch.*\[10, 9\].*\(10, 3\).*\(9,\)"):
        TensorDataset(np.zeros((10, 3)), np.zeros(9))

    class Ragged(IndexDataset):  # some samples lose their label
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return (x, y) if i % 3 else (x,)

    with pytest.raises(RuntimeError, match="same number of fields.*sample 0 has 1 but sample 1 has 2"):
        list(DataLoader(Ragged(6), batch_size=3))

    class Shapes(IndexDataset):
        def __getitem__(self, i):
            return np.zeros(2 + (i == 2), np.float32), i

    with pytest.raises(RuntimeError, match=r"sample 0 has shape \(2,\) but sample 2 has shape \(3,\)") as info:
        list(DataLoader(Shapes(4), batch_size=4))
    assert "batch 0" in "\n".join(info.value.__notes__)

    class Batches(Dataset):  # a dataset that serves whole batches, with one label missing
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return np.zeros((8, 3), np.float32), np.zeros(8 - i, np.int64)

    with pytest.raises(ValueError, match=r"different numbers of samples \[8, 7\]"):
        list(DataLoader(Batches(), batch_size=None))

    class Short(IndexDataset):
        def __getitems__(self, indices):
            return [self[i] for i in indices[:-1]]

    with pytest.raises(RuntimeError, match="returned 2 samples for 3 indices"):
        list(DataLoader(Short(6), batch_size=3))

    ds = TensorDataset(np.arange(4))
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(ds, sampler=SequentialSampler(ds), shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(ds, batch_size=2, batch_sampler=BatchSampler(SequentialSampler(ds), 2, False))
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(ds, num_workers=-1)
    with pytest.raises(ValueError, match="prefetch_factor"):
        DataLoader(ds, prefetch_factor=2)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(TypeError, match="generator"):
        DataLoader(ds, generator="seed")


def test_default_collate_types():
    Point = namedtuple("Point", "x y")
    batch = default_collate([
        {"img": np.ones((2, 2), np.float64), "label": 3, "w": 0.5, "name": "a", "p": Point(1, 2.0)},
        {"img": np.zeros((2, 2), np.float64), "label": 4, "w": 1.5, "name": "b", "p": Point(3, 4.0)},
    ])
    assert batch["img"].shape == (2, 2, 2) and batch["img"].dtype == np.float64
    assert batch["label"].dtype == np.int64 and batch["label"].tolist() == [3, 4]
    assert batch["w"].dtype == np.float32
    assert batch["name"] == ["a", "b"]
    assert isinstance(batch["p"], Point) and batch["p"].x.dtype == np.int64 and batch["p"].y.dtype == np.float32
    xb, yb = default_collate([(dg.tensor([1.0, 2.0]), np.int32(1)), (dg.tensor([3.0, 4.0]), np.int32(0))])
    assert isinstance(xb, dg.Tensor) and xb.dtype == np.float32 and yb.dtype == np.int32
    assert default_collate([True, False]).dtype == np.bool_
    with pytest.raises(TypeError, match="sample 0 is a ndarray but sample 1 is a number"):
        default_collate([np.zeros(2), 1])
    with pytest.raises(KeyError, match="keys"):
        default_collate([{"a": 1}, {"b": 1}])


def test_matches_torch_sequential_batches():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random((11, 3), dtype=np.float32)
    y = np.arange(11)
    ours = list(DataLoader(TensorDataset(x, y), batch_size=4))
    theirs = list(torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                                              batch_size=4))
    assert len(ours) == len(theirs)
    for (xo, yo), (xt, yt) in zip(ours, theirs):
        np.testing.assert_array_equal(xo.numpy(), xt.numpy())
        np.testing.assert_array_equal(yo.numpy(), yt.numpy())
        assert yo.dtype == np.int64 and xo.dtype == np.float32
    for n, b, drop in [(10, 3, False), (10, 3, True), (9, 3, True), (1, 5, False)]:
        torch_len = len(torch.utils.data.BatchSampler(range(n), b, drop))
        assert len(BatchSampler(SequentialSampler(range(n)), b, drop)) == torch_len


def test_random_split_subset_concat():
    torch = pytest.importorskip("torch")
    ds = TensorDataset(np.arange(10))
    for fracs in ([0.5, 0.5], [0.33, 0.33, 0.34], [0.1, 0.2, 0.7], [0.25, 0.75]):
        ours = [len(s) for s in random_split(ds, fracs, generator=0)]
        theirs = [len(s) for s in torch.utils.data.random_split(range(10), fracs)]
        assert ours == theirs
    parts = random_split(ds, [3, 7], generator=5)
    idx = sorted(parts[0].indices + parts[1].indices)
    assert idx == list(range(10))
    assert [s.indices for s in random_split(ds, [3, 7], generator=5)] == [p.indices for p in parts]
    dg.manual_seed(0)
    a = random_split(ds, [5, 5])[0].indices
    dg.manual_seed(0)
    assert random_split(ds, [5, 5])[0].indices == a
    with pytest.raises(ValueError, match="does not equal"):
        random_split(ds, [3, 3])
    with pytest.raises(ValueError, match="sum to 1"):
        random_split(ds, [0.5, 0.6])
    sub = Subset(ds, [4, 2])
    assert int(sub[1][0]) == 2 and len(sub) == 2
    assert labels_of(DataLoader(sub, batch_size=2)) == [4, 2]
    cat = ConcatDataset([TensorDataset(np.arange(3)), TensorDataset(np.arange(10, 12))])
    assert len(cat) == 5 and int(cat[3][0]) == 10 and int(cat[-1][0]) == 11
    with pytest.raises(IndexError):
        cat[5]
    assert len(ds + ds) == 20


def labels_of(loader):
    return [int(v) for (b,) in loader for v in b.numpy()]


def test_samplers():
    ds = range(10)
    perm = list(RandomSampler(ds, generator=1))
    assert sorted(perm) == list(range(10)) and perm == list(RandomSampler(ds, generator=1))
    chained = list(RandomSampler(ds, num_samples=25, generator=2))
    assert len(chained) == 25 and Counter(chained[:20]) == Counter(list(range(10)) * 2)
    rep = list(RandomSampler(ds, replacement=True, num_samples=1000, generator=3))
    assert len(rep) == 1000 and len(set(rep)) == 10
    sub = list(SubsetRandomSampler([5, 7, 9], generator=0))
    assert sorted(sub) == [5, 7, 9]
    w = np.array([0.0, 1.0, 3.0, 0.0])
    draws = list(WeightedRandomSampler(w, 4000, generator=0))
    counts = Counter(draws)
    assert set(counts) == {1, 2} and 2.6 < counts[2] / counts[1] < 3.4
    no_rep = list(WeightedRandomSampler([1, 1, 1, 5], 4, replacement=False, generator=0))
    assert sorted(no_rep) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="non-negative"):
        WeightedRandomSampler([1, -1], 2)
    with pytest.raises(ValueError, match="without replacement"):
        WeightedRandomSampler([1, 0, 0], 2, replacement=False)
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler(range(0))
    dg.manual_seed(4)
    a = list(RandomSampler(ds))
    dg.manual_seed(4)
    assert list(RandomSampler(ds)) == a
    # Class rebalancing through the loader: a 9:1 imbalance comes out roughly even.
    y = np.array([0] * 90 + [1] * 10)
    weights = 1.0 / np.bincount(y)[y]
    loader = DataLoader(TensorDataset(y), batch_size=50, sampler=WeightedRandomSampler(weights, 2000, generator=0))
    share = np.mean([v for (b,) in loader for v in b.numpy()])
    assert 0.42 < share < 0.58


def test_random_draws_differ_across_batches_and_epochs():
    dg.manual_seed(0)
    loader = DataLoader(NoisyDataset(8), batch_size=4)
    epochs = []
    for _ in range(2):
        noise = np.concatenate([xb.numpy() - yb.numpy()[:, None] for xb, yb in loader])
        assert len({tuple(r) for r in noise.round(6)}) == 8  # no two samples share their random draws
        epochs.append(noise)
    assert not np.allclose(epochs[0], epochs[1])
    # Outside a loader the dataset draws from deepgrad's global generator.
    dg.manual_seed(5)
    a = NoisyDataset(2)[1][0]
    dg.manual_seed(5)
    np.testing.assert_array_equal(NoisyDataset(2)[1][0], a)
