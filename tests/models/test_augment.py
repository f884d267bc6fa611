"""Batched augmentations (models/augment.py): geometry against independent constructions, seeding, strengths."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models import augment as A


@pytest.fixture(scope="module")
def images(data_dir):
    """128 real Omniglot drawings, ink = 1, 48x48 float in [0, 1]."""
    with np.load(data_dir / "omniglot" / "images_background.npz") as z:
        paper = z["images"][:64, :2]                                  # (64, 2, 105, 105) bool, True = paper
    ink = torch.from_numpy(~paper).float().view(-1, 1, 105, 105)
    return F.interpolate(ink, size=(48, 48), mode="bilinear", antialias=True).clamp(0, 1)


def _identity_grid_displacement(maps: torch.Tensor, size: int = 48) -> torch.Tensor:
    """Mean distance (pixels) between each output pixel centre and the input point it reads, per map."""
    c = (torch.arange(size) * 2 + 1) / size - 1
    gy, gx = torch.meshgrid(c, c, indexing="ij")
    pts = torch.stack([gx, gy, torch.ones_like(gx)], -1).view(-1, 3)   # (HW, 3)
    src = torch.einsum("nij,pj->npi", maps, pts)
    src = src[..., :2] / src[..., 2:]
    return (src - pts[:, :2]).norm(dim=-1).mean(1) * size / 2          # normalized units -> pixels


def test_output_shape_and_range(images):
    g = torch.Generator().manual_seed(0)
    for strength in A.STRENGTHS:
        v1, v2 = A.two_views(images, strength=strength, generator=g)
        assert v1.shape == v2.shape == images.shape
        assert v1.dtype == images.dtype
        assert 0 <= float(torch.cat([v1, v2]).min()) and float(torch.cat([v1, v2]).max()) <= 1 + 1e-6
        assert not torch.equal(v1, v2)  # two independent draws


def test_identity_parameters_give_identity(images):
    n = images.shape[0]
    one, zero = torch.ones(n), torch.zeros(n)
    maps = {
        "crop": A.crop_map(torch.tensor([[0.0, 0.0, 1.0, 1.0]]).expand(n, 4)),
        "affine": A.affine_map(zero, torch.zeros(n, 2), one, zero),
        "perspective": A.homography_map(A.corners(48, 48).expand(n, 4, 2), A.corners(48, 48).expand(n, 4, 2)),
    }
    for kind, m in maps.items():
        torch.testing.assert_close(A.warp(images, m), images, atol=1e-5, rtol=0, msg=kind)


def test_rotation_and_shift_match_exact_pixel_moves(images):
    n = images.shape[0]
    one, zero = torch.ones(n), torch.zeros(n)
    rot = A.warp(images, A.affine_map(90 * one, torch.zeros(n, 2), one, zero))
    torch.testing.assert_close(rot, torch.rot90(images, 1, (2, 3)), atol=1e-4, rtol=0)  # counter-clockwise
    shift = A.warp(images, A.affine_map(zero, torch.tensor([0.25, -0.125]).expand(n, 2), one, zero))
    # +0.25 of the side = 12 px right, -0.125 = 6 px up; uncovered pixels are filled with 0 (paper)
    torch.testing.assert_close(shift[..., :-6, 12:], images[..., 6:, :-12], atol=1e-5, rtol=0)
    assert float(shift[..., :, :12].abs().max()) == 0 and float(shift[..., -6:, :].abs().max()) == 0


def test_crop_matches_bilinear_upsampling_of_the_box(images):
    box = torch.tensor([[0.0, 0.5, 0.5, 0.5]]).expand(images.shape[0], 4)  # bottom-left quadrant
    crop = A.warp(images, A.crop_map(box))
    ref = F.interpolate(images[..., 24:, :24], scale_factor=2, mode="bilinear", align_corners=False)
    # F.interpolate clamps at the box border where grid_sample reads the neighbouring pixels: compare inside
    torch.testing.assert_close(crop[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-5, rtol=0)


def test_homography_sends_source_points_to_targets():
    g = torch.Generator().manual_seed(1)
    src = torch.rand(16, 4, 2, generator=g) * 0.4 + torch.tensor([[-0.9, -0.9], [0.5, -0.9], [0.5, 0.5], [-0.9, 0.5]])
    dst = torch.rand(16, 4, 2, generator=g) * 2 - 1
    h = A.homography_map(src, dst)
    p = torch.cat([src, torch.ones(16, 4, 1)], -1) @ h.transpose(1, 2)
    torch.testing.assert_close(p[..., :2] / p[..., 2:], dst, atol=1e-4, rtol=0)


def test_random_parameters_stay_in_their_ranges():
    g = torch.Generator().manual_seed(0)
    st = A.STRENGTHS["normal"]
    crop = A.random_crop_maps(4096, st, g)
    w, h = crop[:, 0, 0], crop[:, 1, 1]
    assert float(w.max()) <= 1 and float(h.max()) <= 1                  # every box lies inside the image
    assert float((w * h).min()) >= st.scale[0] - 1e-6                    # area fraction from U(0.75, ...)
    fits = (w < 1) | (h < 1)
    ratio = (w / h)[fits]
    assert float(ratio.min()) >= st.ratio[0] - 1e-5 and float(ratio.max()) <= st.ratio[1] + 1e-5
    persp = A.random_perspective_maps(4096, st, 48, 48, g)
    untouched = (persp - torch.eye(3)).abs().amax((1, 2)) < 1e-5
    assert 0.45 < float(untouched.float().mean()) < 0.55                 # applied with p = 0.5


def test_strengths_are_ordered_by_pixel_movement(images):
    moves = {}
    for strength in A.STRENGTHS:
        g = torch.Generator().manual_seed(0)
        maps = A.random_maps(512, 48, 48, strength=strength, generator=g)
        moves[strength] = float(_identity_grid_displacement(maps).mean())
    assert moves["light"] < moves["normal"] < moves["strong"], moves
    changed = {}
    for strength in A.STRENGTHS:
        g = torch.Generator().manual_seed(0)
        changed[strength] = float((A.augment(images, strength=strength, generator=g) - images).abs().mean())
    assert changed["light"] < changed["normal"] < changed["strong"], changed


def test_same_seed_same_views_different_seed_different(images):
    a = A.two_views(images, generator=torch.Generator().manual_seed(7))
    b = A.two_views(images, generator=torch.Generator().manual_seed(7))
    c = A.two_views(images, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_each_kind_is_picked():
    g = torch.Generator().manual_seed(0)
    maps = A.random_maps(3000, 48, 48, generator=g)
    projective = (maps[:, 2, :2].abs().amax(1) > 1e-6)       # perspective warps that were applied
    axis_aligned = (maps[:, 0, 1].abs() < 1e-7) & (maps[:, 1, 0].abs() < 1e-7) & ~projective  # crops (+ identity)
    rotated = ~projective & ~axis_aligned                                                      # affine warps
    # each kind is picked 1/3 of the time; a picked perspective is applied half of the time
    assert 0.14 < float(projective.float().mean()) < 0.19
    assert 0.30 < float(rotated.float().mean()) < 0.37


def test_unknown_strength_is_an_error(images):
    with pytest.raises(ValueError, match="extreme"):
        A.augment(images, strength="extreme")
