"""deepgrad.data.transforms: exact geometry, parity with torch resampling, seeding, labels kept aligned."""

import numpy as np
import pytest

import deepgrad as dg
from deepgrad.data import DataLoader, TensorDataset, TransformDataset
from deepgrad.data import transforms as T
from deepgrad.data.transforms import functional as F


def image(*shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


ALL_RANDOM = [
    lambda g: T.RandomHorizontalFlip(generator=g),
    lambda g: T.RandomVerticalFlip(generator=g),
    lambda g: T.RandomRotation(30, generator=g),
    lambda g: T.RandomAffine(20, translate=(0.2, 0.1), scale=(0.8, 1.2), shear=(-10, 10, -5, 5), generator=g),
    lambda g: T.RandomCrop(8, padding=2, generator=g),
    lambda g: T.RandomResizedCrop(6, generator=g),
    lambda g: T.GaussianNoise(0.0, 0.2, generator=g),
    lambda g: T.RandomErasing(p=1.0, value="random", generator=g),
    lambda g: T.ColorJitter(0.4, 0.4, 0.4, 0.1, generator=g),
]


def test_flips_and_quarter_turns_are_exact():
    img = image(3, 7, 7)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0)(img), np.flip(img, -1))
    np.testing.assert_array_equal(T.RandomVerticalFlip(p=1.0)(img), np.flip(img, -2))
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=0.0)(img), img)
    batch = image(2, 3, 6, 6)
    for interp in ("bilinear", "nearest"):
        for angle, k in [(90, 1), (-90, -1), (180, 2), (270, 3), (0, 0)]:
            rot = T.RandomRotation((angle, angle), interpolation=interp)
            np.testing.assert_array_equal(rot(img), np.rot90(img, k, axes=(-2, -1)))
            np.testing.assert_array_equal(rot(batch), np.rot90(batch, k, axes=(-2, -1)))
    # A Tensor goes in, a Tensor comes out.
    out = T.RandomHorizontalFlip(p=1.0)(dg.tensor(img))
    assert isinstance(out, dg.Tensor)
    np.testing.assert_array_equal(out.numpy(), np.flip(img, -1))


def test_affine_matches_torch_grid_sample():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    img = image(2, 3, 9, 9, seed=1)
    n = img.shape[-1]
    for _ in range(5):
        angle, scale = rng.uniform(-60, 60), rng.uniform(0.7, 1.3)
        shear, translate = rng.uniform(-20, 20, 2), rng.integers(-2, 3, 2)
        ours = F.affine(img, angle, translate, scale, shear)
        # torch's affine_grid works in normalised coordinates; with align_corners=True and a square
        # image, x_norm = (x - c) / c with c = (n - 1) / 2, so the inverse map carries over directly.
        m = F.affine_matrix(angle, translate, scale, shear, ((n - 1) / 2, (n - 1) / 2))
        inv_lin = np.linalg.inv(m[:, :2])
        theta = np.concatenate([inv_lin, (-inv_lin @ translate / ((n - 1) / 2))[:, None]], axis=1)
        grid = torch.nn.functional.affine_grid(torch.tensor(theta[None], dtype=torch.float32).expand(2, 2, 3),
                                               (2, 3, n, n), align_corners=True)
        theirs = torch.nn.functional.grid_sample(torch.from_numpy(img), grid, mode="bilinear", padding_mode="zeros",
                                                 align_corners=True).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("size", [(5, 7), (16, 12), (9, 9)])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_resize_matches_torch_interpolate(size, mode):
    torch = pytest.importorskip("torch")
    img = image(2, 3, 9, 11)
    ours = F.resize(img, size, mode)
    kw = {"align_corners": False} if mode == "bilinear" else {}
    theirs = torch.nn.functional.interpolate(torch.from_numpy(img), size=size, mode=mode, **kw).numpy()
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert F.resize(image(1, 8, 16), 4).shape == (1, 4, 8)  # int size: the shorter edge


def test_normalize_exact_and_errors():
    img = image(3, 4, 5)
    mean, std = [0.1, 0.2, 0.3], [0.5, 0.25, 2.0]
    out = T.Normalize(mean, std)(img)
    want = (img - np.array(mean, np.float32)[:, None, None]) / np.array(std, np.float32)[:, None, None]
    np.testing.assert_array_equal(out, want)
    assert out.dtype == np.float32
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(out, ((torch.from_numpy(img) - torch.tensor(mean)[:, None, None])
                                        / torch.tensor(std)[:, None, None]).numpy())
    with pytest.raises(ValueError, match="division by zero"):
        T.Normalize([0.0], [0.0])(img)
    with pytest.raises(ValueError, match="mean has 2 values but the image has 3 channels"):
        T.Normalize([0.0, 0.0], [1.0, 1.0])(img)
    with pytest.raises(ValueError, match=r"\(\.\.\., C, H, W\)"):
        T.Normalize([0.0], [1.0])(image(4, 4))


def test_random_crop_padding_and_shapes():
    img = image(1, 8, 8)
    crop = T.RandomCrop(8, padding=2, generator=0)
    padded = np.pad(img, ((0, 0), (2, 2), (2, 2)))
    windows = {(i, j) for i in range(5) for j in range(5)}
    hits = set()
    for _ in range(60):
        out = crop(img)
        assert out.shape == (1, 8, 8)
        match = [(i, j) for (i, j) in windows if np.array_equal(padded[:, i:i + 8, j:j + 8], out)]
        assert match
        hits.update(match)
    assert len(hits) > 15  # many different offsets come up
    assert T.RandomCrop((4, 6))(image(3, 8, 8)).shape == (3, 4, 6)
    assert T.RandomCrop(10, pad_if_needed=True)(image(3, 8, 7)).shape == (3, 10, 10)
    assert T.RandomCrop(5, padding=(1, 2, 3, 4))(image(2, 3, 6, 6)).shape == (2, 3, 5, 5)
    edge = T.RandomCrop(8, padding=3, padding_mode="edge")(np.full((1, 8, 8), 0.7, np.float32))
    np.testing.assert_array_equal(edge, np.full((1, 8, 8), 0.7, np.float32))
    with pytest.raises(ValueError, match=r"required crop size \(10, 10\) is larger .* \(8, 8\)"):
        T.RandomCrop(10)(img)


@pytest.mark.parametrize("make", ALL_RANDOM)
def test_random_transforms_reproducible(make):
    img = image(3, 8, 8)
    a = [make(5)(img) for _ in range(3)]  # own generator, reseeded
    b = [make(5)(img) for _ in range(3)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    t = make(None)  # deepgrad's global generator
    dg.manual_seed(3)
    c = [t(img) for _ in range(4)]
    dg.manual_seed(3)
    d = [t(img) for _ in range(4)]
    for x, y in zip(c, d):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(c[0], x) for x in c[1:])  # it is random at all
    assert c[0].dtype == np.float32 and c[0].shape[:-2] == (3,)


def test_pipeline_keeps_labels_aligned_through_loader():
    # Image i is constant = i; label-preserving geometric transforms keep it constant.
    n = 24
    x = np.repeat(np.arange(n, dtype=np.float32), 3 * 8 * 8).reshape(n, 3, 8, 8)
    aug = T.Compose([T.RandomHorizontalFlip(), T.RandomVerticalFlip(), T.RandomRotation((90, 90)),
                     T.RandomCrop(8, padding=2, padding_mode="reflect"), T.RandomResizedCrop(8)])
    ds = TransformDataset(TensorDataset(x, np.arange(n)), aug)
    dg.manual_seed(0)
    for xb, yb in DataLoader(ds, batch_size=5, shuffle=True, num_workers=2):
        np.testing.assert_allclose(xb.numpy().reshape(len(yb), -1), np.repeat(yb.numpy()[:, None], 192, 1)
                                   .astype(np.float32), rtol=1e-6)


def test_color_jitter_and_colour_ops():
    red = np.zeros((3, 2, 2), np.float32)
    red[0] = 1.0
    np.testing.assert_allclose(T.ColorJitter(hue=(1 / 3, 1 / 3))(red)[1], 1.0, atol=1e-6)  # red -> green
    np.testing.assert_allclose(T.ColorJitter(hue=(1 / 3, 1 / 3))(red)[[0, 2]], 0.0, atol=1e-6)
    img = image(3, 5, 5)
    np.testing.assert_allclose(T.ColorJitter(hue=(0.0, 0.0))(img), img)
    np.testing.assert_allclose(F.adjust_hue(F.adjust_hue(img, 0.2), -0.2), img, atol=1e-6)
    np.testing.assert_array_equal(T.ColorJitter(brightness=(0.5, 0.5))(img), np.clip(img * 0.5, 0, 1))
    grey = T.ColorJitter(saturation=(0.0, 0.0))(img)
    np.testing.assert_allclose(grey[0], grey[1]) and np.testing.assert_allclose(grey[1], grey[2])
    flat = T.ColorJitter(contrast=(0.0, 0.0))(img)
    np.testing.assert_allclose(flat, flat.mean(), atol=1e-6)
    with pytest.raises(ValueError, match="3-channel"):
        T.ColorJitter(hue=0.1)(image(1, 4, 4))
    with pytest.raises(ValueError, match="hue"):
        T.ColorJitter(hue=0.7)
    with pytest.raises(ValueError, match="non-negative"):
        T.ColorJitter(brightness=-1)


def test_erasing_noise_resized_crop_and_to_array():
    img = image(3, 16, 16) + 0.5
    out = T.RandomErasing(p=1.0, value=0, generator=1)(img)
    zero = np.all(out == 0, axis=0)
    rows, cols = np.nonzero(zero)
    assert zero.any() and zero.sum() == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)  # one rectangle
    assert not np.any(img == 0)  # the input is untouched
    np.testing.assert_array_equal(T.RandomErasing(p=0.0)(img), img)
    per_channel = T.RandomErasing(p=1.0, value=[1.0, 2.0, 3.0], generator=1)(img)
    np.testing.assert_array_equal(per_channel[:, zero], np.array([[1.0], [2.0], [3.0]]) * np.ones((1, zero.sum())))
    noise = T.GaussianNoise(0.1, 0.2, generator=0)(np.zeros((3, 64, 64), np.float32))
    assert abs(noise.mean() - 0.1) < 0.01 and abs(noise.std() - 0.2) < 0.01
    assert T.GaussianNoise(0.0, 5.0, clip=True)(img).max() <= 1.0
    assert T.RandomResizedCrop((5, 7))(image(2, 3, 12, 10)).shape == (2, 3, 5, 7)
    full = T.RandomResizedCrop(10, scale=(1.0, 1.0), ratio=(1.0, 1.0))(image(1, 10, 10))
    np.testing.assert_array_equal(full, image(1, 10, 10))
    hwc = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    chw = T.ToArray()(hwc)
    assert chw.shape == (3, 4, 5) and chw.dtype == np.float32
    np.testing.assert_array_equal(chw, hwc.transpose(2, 0, 1).astype(np.float32) / np.float32(255))
    assert T.ToArray()(hwc[:, :, 0]).shape == (1, 4, 5)
    assert isinstance(T.ToTensor()(hwc), dg.Tensor)
    assert "RandomCrop" in repr(T.Compose([T.RandomCrop(4)]))


def test_fill_and_geometry_errors():
    img = np.ones((3, 5, 5), np.float32)
    rotated = T.RandomRotation((45, 45), fill=[0.0, 0.5, 1.0], interpolation="nearest")(img)
    assert rotated[1, 0, 0] == 0.5 and rotated[2, 0, 0] == 1.0 and rotated[0, 2, 2] == 1.0
    with pytest.raises(ValueError, match="fill"):
        T.RandomRotation(10, fill=[0.0, 1.0])(img)
    with pytest.raises(ValueError, match="interpolation"):
        F.rotate(img, 10, interpolation="bicubic")
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W\)"):
        T.RandomHorizontalFlip()(np.zeros(5))
    with pytest.raises(ValueError, match="probability"):
        T.RandomHorizontalFlip(p=1.5)
    with pytest.raises(ValueError, match="translate"):
        T.RandomAffine(0, translate=(1.5, 0))
    uint8 = (np.arange(25, dtype=np.uint8).reshape(1, 5, 5))
    assert F.rotate(uint8, 90).dtype == np.uint8
    np.testing.assert_array_equal(F.rotate(uint8, 90), np.rot90(uint8, 1, axes=(-2, -1)))
