"""Batched augmentations: per-image independent parameters, ranges, determinism, validation."""
import pytest
import torch

from cl_teach.augment import (
    Augment,
    color_jitter,
    gaussian_blur,
    multi_crop,
    random_grayscale,
    random_resized_crop,
    two_views,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_identity_when_everything_is_off():
    x = torch.rand(6, 3, 16, 16)
    y = Augment(crop_scale=(1.0, 1.0), flip=False, strength=0.0)(x, gen())
    # area 1 with a random aspect ratio in [3/4, 4/3] still squeezes one side, so compare the
    # crop alone at ratio 1: an identity affine grid reproduces the image
    z = random_resized_crop(x, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False, generator=gen())
    assert torch.allclose(z, x, atol=1e-5)
    assert y.shape == x.shape


def test_flip_is_drawn_per_image_not_per_batch():
    # torchvision v2 on a batch flips all images or none; ours must flip each independently
    x = torch.rand(64, 1, 12, 12)
    y = random_resized_crop(x, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=True, generator=gen())
    same = (y - x).abs().flatten(1).amax(1) < 1e-5
    flipped = (y - x.flip(-1)).abs().flatten(1).amax(1) < 1e-5
    assert (same | flipped).all()
    assert 10 < int(flipped.sum()) < 54


def test_crop_parameters_differ_between_images():
    x = torch.rand(1, 1, 28, 28).expand(32, 1, 28, 28).contiguous()
    y = Augment(strength=0.0, flip=False)(x, gen())
    assert y.flatten(1).std(0).mean() > 1e-3          # the same image gives 32 different crops


def test_output_shape_range_and_dtype():
    x = torch.rand(10, 3, 20, 20)
    y = Augment(blur_p=0.5)(x, gen())
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= 0 and y.max() <= 1
    small = Augment(size=8)(x, gen())
    assert small.shape == (10, 3, 8, 8)


def test_same_generator_seed_gives_the_same_views():
    x = torch.rand(8, 1, 28, 28)
    a1, a2 = two_views(x, Augment(), gen(3))
    b1, b2 = two_views(x, Augment(), gen(3))
    assert torch.equal(a1, b1) and torch.equal(a2, b2)
    assert not torch.equal(a1, a2)                     # the two views differ


def test_strength_scales_the_jitter():
    x = torch.rand(256, 1, 16, 16) * 0.5 + 0.25
    base = Augment(strength=0.0)(x, gen(1))
    mild = Augment(strength=0.5, jitter_p=1.0)(x, gen(1))
    strong = Augment(strength=2.0, jitter_p=1.0)(x, gen(1))
    assert (strong - base).abs().mean() > (mild - base).abs().mean() > 0


def test_color_jitter_p0_is_identity_and_grayscale_equalises_channels():
    x = torch.rand(5, 3, 8, 8)
    assert torch.equal(color_jitter(x, p=0.0, generator=gen()), x)
    g = random_grayscale(x, p=1.0, generator=gen())
    assert torch.allclose(g[:, 0], g[:, 1]) and torch.allclose(g[:, 1], g[:, 2])
    one = torch.rand(5, 1, 8, 8)
    assert torch.equal(random_grayscale(one, p=1.0, generator=gen()), one)   # no-op on 1 channel


def test_blur_keeps_constant_images_and_smooths_noise():
    c = torch.full((3, 1, 10, 10), 0.3)
    assert torch.allclose(gaussian_blur(c, p=1.0, generator=gen()), c, atol=1e-6)
    noise = torch.rand(3, 1, 10, 10)
    assert gaussian_blur(noise, sigma=(1.0, 1.0), p=1.0, generator=gen()).std() < noise.std()


def test_multi_crop_sizes():
    x = torch.rand(4, 1, 28, 28)
    views = multi_crop(x, Augment(), 2, Augment(crop_scale=(0.1, 0.4), size=12), 3, generator=gen())
    assert [tuple(v.shape[-2:]) for v in views] == [(28, 28)] * 2 + [(12, 12)] * 3


@pytest.mark.parametrize("kwargs, match", [
    (dict(crop_scale=(0.0, 1.0)), "crop_scale"),
    (dict(crop_scale=(0.8, 0.5)), "crop_scale"),
    (dict(strength=-1.0), "strength"),
])
def test_bad_arguments_name_themselves(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Augment(**kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="x must be a 4-d"):
        Augment()(torch.rand(28, 28))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        Augment()([[0.0]])
    with pytest.raises(ValueError, match="local_views"):
        multi_crop(torch.rand(2, 1, 8, 8), Augment(), n_local=2)
