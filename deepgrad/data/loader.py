"""DataLoader: batches from a dataset, shuffled by a seeded generator, optionally prepared ahead by threads.

Randomness: each epoch draws one seed (from ``generator``, else deepgrad's global generator, so
``deepgrad.manual_seed`` makes runs repeat). The epoch's order comes from a stream derived from that
seed, and batch ``b`` is fetched with ``current_generator()`` set to a stream derived from
``(seed, b)``: random transforms inside the dataset give the same batch whichever thread prepared it.

Workers are *threads* here (``num_workers > 0``): they prepare up to ``num_workers * prefetch_factor``
batches ahead while the model trains. NumPy releases the GIL in most array work and in file reads, so
this overlaps data preparation with compute; batches still come out in sampler order and are
identical to ``num_workers=0``.

Exact resume: ``loader.state_dict()`` taken mid-epoch (say after batch 17) and given to
``load_state_dict`` on a fresh loader makes its next ``iter()`` yield batch 18 onwards of that very
epoch, bit for bit; later epochs follow as in the uninterrupted run.

>>> import numpy as np
>>> from deepgrad.data import TensorDataset
>>> loader = DataLoader(TensorDataset(np.arange(10.0)), batch_size=4, shuffle=True, generator=0)
>>> [len(b[0]) for b in loader]
[4, 4, 2]
"""

from __future__ import annotations

import collections
import copy
import itertools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout

import numpy as np

from ..tensor import Tensor
from ._random import (
    BATCH_STREAM,
    SAMPLER_STREAM,
    WORKER_STREAM,
    GeneratorLike,
    as_generator,
    derived_generator,
    draw_seed,
    using_generator,
)
from .collate import default_collate, default_convert
from .dataset import _has_fast_batch
from .iterable import IterableDataset, WorkerInfo, worker_context
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler


def _sampler_generators(sampler) -> list[np.random.Generator]:
    """Generators owned by a (batch) sampler chain: their state is part of the loader's resume state."""
    found, seen = [], set()
    while sampler is not None and id(sampler) not in seen:
        seen.add(id(sampler))
        g = getattr(sampler, "generator", None)
        if isinstance(g, np.random.Generator):
            found.append(g)
        sampler = getattr(sampler, "sampler", None)
    return found


class DataLoader:
    """Iterate over ``dataset`` in batches (PyTorch's signature; ``num_workers`` are prefetch threads).

    ``generator`` (a :class:`deepgrad.Generator`, any ``np.random.Generator`` or an int seed) drives shuffling
    and per-batch augmentation; by default each epoch's seed is drawn from deepgrad's global generator.
    ``batch_size=None`` turns batching off: each dataset item is converted and yielded as is.

    torch's process and memory options are accepted so scripts run unchanged, and mean this here:
    ``pin_memory`` / ``pin_memory_device`` do nothing (batches are host arrays; ``.to("cuda")`` copies them);
    ``multiprocessing_context`` and ``persistent_workers`` need ``num_workers > 0`` as in torch and change
    nothing (workers are threads sharing the dataset, started per epoch); batches always come in order,
    whatever ``in_order`` says.
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Sampler | None = None, batch_sampler: Sampler | None = None, num_workers: int = 0,
                 collate_fn: Callable | None = None, pin_memory: bool = False, drop_last: bool = False,
                 timeout: float = 0, worker_init_fn: Callable[[int], None] | None = None,
                 multiprocessing_context=None, generator: GeneratorLike = None, *,
                 prefetch_factor: int | None = None, persistent_workers: bool = False, pin_memory_device: str = "",
                 in_order: bool = True):
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers option should be a non-negative integer, got {num_workers!r}")
        if persistent_workers and num_workers == 0:
            raise ValueError("DataLoader: persistent_workers option needs num_workers > 0")
        if multiprocessing_context is not None:
            if num_workers == 0:
                raise ValueError("DataLoader: multiprocessing_context can only be used with multi-process loading "
                                 f"(num_workers > 0), but got num_workers={num_workers}")
            if multiprocessing_context not in ("fork", "spawn", "forkserver"):
                raise ValueError("DataLoader: multiprocessing_context option should specify a valid start method "
                                 f"in ['fork', 'spawn', 'forkserver'], but got {multiprocessing_context!r}")
        if timeout < 0:
            raise ValueError(f"DataLoader: timeout option should be non-negative, got {timeout}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("DataLoader: prefetch_factor option could only be specified with num_workers > 0 "
                             "(the prefetch threads)")
        if prefetch_factor is not None and (not isinstance(prefetch_factor, int) or prefetch_factor < 1):
            raise ValueError(f"DataLoader: prefetch_factor should be a positive integer, got {prefetch_factor!r}")
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:  # a stream has no indices: nothing to shuffle or sample (torch's checks)
            for option, value in (("shuffle", shuffle), ("sampler", sampler), ("batch_sampler", batch_sampler)):
                if value not in (None, False):
                    raise ValueError(f"DataLoader with IterableDataset: expected unspecified {option} option, but "
                                     f"got {option}={value!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                 "sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and is mutually exclusive "
                             "with drop_last")
        if sampler is None and not self._iterable:
            if not hasattr(dataset, "__len__"):
                raise TypeError(f"DataLoader: the dataset ({type(dataset).__name__}) has no __len__; "
                                f"give a sampler that yields its indices")
            sampler = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not self._iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.prefetch_factor = (2 if prefetch_factor is None else prefetch_factor) if num_workers > 0 else None
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.generator = as_generator(generator, "DataLoader")
        # torch's options with no effect here (see the class docstring), kept so code that reads them works
        self.pin_memory, self.pin_memory_device = bool(pin_memory), pin_memory_device
        self.multiprocessing_context, self.persistent_workers, self.in_order = (multiprocessing_context,
                                                                                persistent_workers, in_order)
        self._auto_collation = batch_sampler is not None or (self._iterable and batch_size is not None)
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_collate if self._auto_collation else default_convert)
        # Resume bookkeeping: the epoch in progress (or last finished) and a pending load_state_dict.
        self._epochs_started = 0
        self._epoch: dict | None = None
        self._pending: dict | None = None

    # ------------------------------------------------------------------ size
    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __len__(self) -> int:
        if self._iterable:  # torch's rule: the dataset's own length, batched (one worker's view)
            if not hasattr(self.dataset, "__len__"):
                raise TypeError(f"object of type '{type(self.dataset).__name__}' has no len()")
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self._index_sampler)

    # ------------------------------------------------------------------ fetching
    def _fetch(self, indices, batch_no: int, seed: int):
        with using_generator(derived_generator(seed, BATCH_STREAM, batch_no)):
            if not self._auto_collation:
                item = self._get(indices, batch_no)
                out = self.collate_fn(item)
                if self.collate_fn is default_convert:
                    _check_fields(out, batch_no)
                return out
            if self.collate_fn is default_collate and _has_fast_batch(self.dataset):
                return self.dataset._fetch_batch(indices)
            if hasattr(self.dataset, "__getitems__"):
                samples = self.dataset.__getitems__(list(indices))
                if len(samples) != len(indices):
                    raise RuntimeError(f"DataLoader: {type(self.dataset).__name__}.__getitems__ returned "
                                       f"{len(samples)} samples for {len(indices)} indices (batch {batch_no})")
            else:
                samples = [self._get(i, batch_no) for i in indices]
            try:
                return self.collate_fn(samples)
            except Exception as e:
                e.add_note(f"DataLoader: while collating batch {batch_no} (dataset indices {list(indices)[:16]}"
                           f"{' ...' if len(indices) > 16 else ''})")
                raise

    def _get(self, index, batch_no: int):
        try:
            return self.dataset[index]
        except Exception as e:
            size = len(self.dataset) if hasattr(self.dataset, "__len__") else "?"
            e.add_note(f"DataLoader: while fetching dataset[{index}] (len(dataset) = {size}) for batch {batch_no}")
            raise

    # ------------------------------------------------------------------ epochs
    def _start_epoch(self) -> dict:
        samplers = _sampler_generators(self._index_sampler)
        if self._pending is not None:  # resume the epoch a state_dict was taken in
            state, self._pending = self._pending, None
            for g, s in zip(samplers, state["sampler_generators_at_epoch_start"]):
                g.bit_generator.state = copy.deepcopy(s)
            epoch = dict(state, finished=False)
        else:
            seed = draw_seed(self.generator)
            self._epochs_started += 1
            epoch = {"epoch": self._epochs_started, "epoch_seed": seed, "batches_done": 0, "finished": False,
                     "sampler_generators_at_epoch_start": [copy.deepcopy(g.bit_generator.state) for g in samplers]}
        self._epoch = epoch
        return epoch

    def _index_batches(self, seed: int, skip: int) -> Iterator[tuple[int, object]]:
        """(batch number, indices) after the first ``skip`` batches; samplers draw from the epoch stream."""
        rng = derived_generator(seed, SAMPLER_STREAM)
        with using_generator(rng):
            it = iter(self._index_sampler)
        for batch_no in itertools.count():
            with using_generator(rng):  # a generator sampler's body runs inside next()
                indices = next(it, _END)
            if indices is _END:
                return
            if batch_no >= skip:
                yield batch_no, indices

    def __iter__(self) -> Iterator:
        # The epoch starts (its seed is drawn) when iter() is called, as in torch, not at the first next().
        return self._run_epoch(self._start_epoch())

    def _run_epoch(self, epoch: dict) -> Iterator:
        if self._iterable:
            for batch_no, out in self._stream_batches(epoch["epoch_seed"]):
                if batch_no >= epoch["batches_done"]:  # a resumed epoch replays its streams up to where it was
                    epoch["batches_done"] = batch_no + 1
                    yield out
            epoch["finished"] = True
            return
        seed = epoch["epoch_seed"]
        batches = self._index_batches(seed, epoch["batches_done"])
        if self.num_workers == 0:
            for batch_no, indices in batches:
                out = self._fetch(indices, batch_no, seed)
                epoch["batches_done"] = batch_no + 1
                yield out
        else:
            yield from self._prefetched(batches, epoch)
        epoch["finished"] = True

    def _worker_info(self, worker_id: int, seed: int) -> WorkerInfo:
        return WorkerInfo(worker_id, self.num_workers, (seed + worker_id) % 2**63, self.dataset)

    def _stream_batches(self, seed: int) -> Iterator[tuple[int, object]]:
        """(batch number, batch) of an IterableDataset: one stream per worker (its own iterator, worker info
        and random stream), batches taken from the streams in turn until all are exhausted, as torch's worker
        processes hand them over."""
        streams = []
        for worker_id in range(max(1, self.num_workers)):
            info = self._worker_info(worker_id, seed) if self.num_workers else None
            rng = derived_generator(seed, WORKER_STREAM, worker_id)
            with worker_context(info), using_generator(rng):
                if info is not None and self.worker_init_fn is not None:
                    self.worker_init_fn(worker_id)
                streams.append((info, rng, iter(self.dataset)))
        active, batch_no = list(range(len(streams))), 0
        while active:
            for worker_id in list(active):
                info, rng, it = streams[worker_id]
                with worker_context(info), using_generator(rng):
                    out = self._next_from_stream(it)
                if out is _END:
                    active.remove(worker_id)
                    continue
                yield batch_no, out
                batch_no += 1

    def _next_from_stream(self, it):
        if not self._auto_collation:
            item = next(it, _END)
            return item if item is _END else self.collate_fn(item)
        items = list(itertools.islice(it, self.batch_size))
        if not items or (self.drop_last and len(items) < self.batch_size):
            return _END
        return self.collate_fn(items)

    def _prefetched(self, batches, epoch: dict) -> Iterator:
        ids = itertools.count()
        lock = threading.Lock()

        def init():
            with lock:
                worker_id = next(ids)
            # the thread's identity for get_worker_info(), for as long as the thread lives (this epoch)
            worker_context(self._worker_info(worker_id, epoch["epoch_seed"])).__enter__()
            if self.worker_init_fn is not None:
                self.worker_init_fn(worker_id)

        pool = ThreadPoolExecutor(self.num_workers, thread_name_prefix="deepgrad-loader", initializer=init)
        pending = collections.deque()
        try:
            for batch_no, indices in itertools.islice(batches, self.num_workers * self.prefetch_factor):
                pending.append((batch_no, pool.submit(self._fetch, indices, batch_no, epoch["epoch_seed"])))
            while pending:
                batch_no, future = pending.popleft()
                try:
                    out = future.result(timeout=self.timeout or None)
                except FuturesTimeout:
                    raise RuntimeError(f"DataLoader timed out after {self.timeout} seconds waiting for batch "
                                       f"{batch_no}") from None
                for nxt, indices in itertools.islice(batches, 1):
                    pending.append((nxt, pool.submit(self._fetch, indices, nxt, epoch["epoch_seed"])))
                epoch["batches_done"] = batch_no + 1
                yield out
        finally:  # also runs when the consumer stops early: no thread outlives the epoch's iterator
            for _, f in pending:
                f.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict:
        """Where the loader stands: epoch count, the current epoch's seed and batches done, generator states.

        Plain Python data (ints, dicts of ints): JSON- and pickle-friendly. A loader without its own
        ``generator`` draws each epoch's seed from deepgrad's global generator, so a checkpoint for exact
        resume holds ``deepgrad.get_rng_state()`` too and restores both before iterating again.
        """
        gens = _sampler_generators(self._index_sampler)
        epoch = self._epoch
        if epoch is None or epoch["finished"]:
            current = None
        else:
            current = {k: copy.deepcopy(v) for k, v in epoch.items() if k != "finished"}
        return {
            "epochs_started": self._epochs_started,
            "generator": None if self.generator is None else copy.deepcopy(self.generator.bit_generator.state),
            "sampler_generators": [copy.deepcopy(g.bit_generator.state) for g in gens],
            "current_epoch": current,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`: the next ``iter(loader)`` continues the saved epoch (or starts the next)."""
        missing = {"epochs_started", "generator", "sampler_generators", "current_epoch"} - set(state)
        if missing:
            raise KeyError(f"DataLoader.load_state_dict: missing keys {sorted(missing)}")
        if (state["generator"] is None) != (self.generator is None):
            raise ValueError("DataLoader.load_state_dict: the saved loader "
                             f"{'had no' if state['generator'] is None else 'had its own'} generator but this one "
                             f"{'has one' if self.generator is not None else 'has none'}")
        gens = _sampler_generators(self._index_sampler)
        if len(gens) != len(state["sampler_generators"]):
            raise ValueError(f"DataLoader.load_state_dict: the saved sampler had {len(state['sampler_generators'])} "
                             f"generator(s), this one has {len(gens)}")
        if self.generator is not None:
            self.generator.bit_generator.state = copy.deepcopy(state["generator"])
        for g, s in zip(gens, state["sampler_generators"]):
            g.bit_generator.state = copy.deepcopy(s)
        self._epochs_started = int(state["epochs_started"])
        current = state["current_epoch"]
        self._pending = None if current is None else copy.deepcopy(current)
        self._epoch = None if current is None else dict(copy.deepcopy(current), finished=False)


_END = object()


def _check_fields(item, batch_no: int) -> None:
    """Unbatched mode: a dataset that returns whole batches must give inputs and targets the same count."""
    if isinstance(item, (list, tuple)):
        sizes = [f.shape[0] for f in item if isinstance(f, Tensor) and f.ndim > 0]
        if len(set(sizes)) > 1:
            raise ValueError(f"DataLoader: item {batch_no} has fields with different numbers of samples "
                             f"{sizes} (first dimension of each field); inputs and targets must match")
