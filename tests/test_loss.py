"""Training losses: parity with the original LitePose losses, hand computations, edge cases."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import shared

from litepose.engine.loss import LitePoseLoss, ae_loss, heatmap_distillation_loss, heatmap_loss

CASES = ["seed0", "seed1", "seed2", "max_people"]


def _load_case(name: str):
    cases = torch.load(shared("ref/loss_cases.pt"), weights_only=True)["cases"]
    case = next(c for c in cases if c["name"] == name)
    outputs = torch.load(shared(f"ref/{case['outputs_file']}"), weights_only=True)["outputs"]
    outputs = [o.float().requires_grad_() for o in outputs]
    heatmaps = []
    for sp in case["heatmaps_sparse"]:
        dense = torch.zeros(math.prod(sp["shape"]))
        dense.index_put_((sp["index"].long(),), sp["value"])
        heatmaps.append(dense.view(sp["shape"]))
    masks = [m.float() for m in case["masks"]]
    return case, outputs, heatmaps, masks, list(case["joints"])


@pytest.mark.parametrize("name", CASES)
def test_matches_original_values(name):
    case, outputs, heatmaps, masks, joints = _load_case(name)
    ref = case["results"]
    out = LitePoseLoss(17)(outputs, heatmaps, masks, joints)
    for s in range(2):
        torch.testing.assert_close(out["heatmap_per_image"][s], ref["heatmaps_loss"][s], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(out["push_per_image"], ref["push_loss_per_image_stage0"], rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(out["pull_per_image"], ref["pull_loss_per_image_stage0"], rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(out["push"], ref["push_loss"][0], rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(out["pull"], ref["pull_loss"][0], rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(out["total"], ref["total_loss"], rtol=1e-6, atol=1e-8)
    # the raw AE values (before the 1e-3 factors)
    push, pull = ae_loss(outputs[0][:, 17:], joints[0])
    torch.testing.assert_close(push.mean(), ref["push_raw_stage0"], rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(pull.mean(), ref["pull_raw_stage0"], rtol=1e-6, atol=1e-9)
    # images with fewer than 2 (push) / 0 (pull) people contribute 0, as in the original
    info = json.loads(shared("ref/loss_cases.json").read_text())
    n = torch.tensor(next(c for c in info["cases"] if c["name"] == name)["persons_with_tags_stage0"])
    assert torch.all(push[n < 2] == 0) and torch.all(push[n >= 2] > 0)
    assert torch.all(pull[n == 0] == 0) and torch.all(pull[n > 0] > 0)


def test_matches_original_gradient():
    case, outputs, heatmaps, masks, joints = _load_case("seed0")
    grads = torch.load(shared("ref/loss_cases_grad.pt"), weights_only=True)["grads"]
    LitePoseLoss(17)(outputs, heatmaps, masks, joints)["total"].backward()
    for s in range(2):
        torch.testing.assert_close(outputs[s].grad, grads[s], rtol=1e-5, atol=1e-10)
    # the tag channels do receive the push/pull gradient (not only the heatmaps)
    assert outputs[0].grad[:, 17:].abs().sum() > 0


def _tiny_table(rows: dict[int, list[tuple[int, int]]], people: int = 30, k: int = 2) -> torch.Tensor:
    table = torch.zeros(1, people, k, 2, dtype=torch.int32)
    for person, slots in rows.items():
        for slot, index in enumerate(slots):
            table[0, person, slot] = torch.tensor([index[0], index[1]])
    return table


def test_ae_hand_computation_two_people():
    # K = 2 joint types on a 2x2 tag map: flat index = k*4 + y*2 + x.
    tags = torch.zeros(1, 2, 2, 2)
    flat = tags.view(-1)
    flat[0], flat[5], flat[3] = 1.0, 3.0, -1.0
    # person 0: joint 0 at (0, 0) tag 1, joint 1 at (1, 0) tag 3 -> mean 2, pull 1
    # person 1: empty row (no used joint: does not exist)
    # person 2: one joint at (1, 1) tag -1 -> mean -1, pull 0; an unused slot pointing at tag 3
    table = _tiny_table({0: [(0, 1), (5, 1)], 2: [(3, 1), (5, 0)]})
    push, pull = ae_loss(tags, table)
    assert pull.item() == pytest.approx((1.0 + 0.0) / 2)
    # push = 0.5 * (sum_ij exp(-(m_i - m_j)^2) - n) / (n (n - 1)) = 0.5 * 2 e^-9 / 2
    assert push.item() == pytest.approx(0.5 * math.exp(-9.0), rel=1e-6)

    flat[3] = 1.5  # person 2 mean 1.5: |m0 - m2| = 0.5
    push, pull = ae_loss(tags, table, push_type="max")
    assert push.item() == pytest.approx(0.5 * (2 * 0.5) / 2)
    push, _ = ae_loss(tags, table, push_type="exp")
    assert push.item() == pytest.approx(0.5 * math.exp(-0.25), rel=1e-6)


def test_ae_zero_and_one_person_images():
    tags = torch.randn(3, 2, 2, 2, requires_grad=True)
    table = torch.zeros(3, 30, 2, 2, dtype=torch.int32)
    table[1, 4, 0] = torch.tensor([1, 1])  # image 1: one person, two joints
    table[1, 4, 1] = torch.tensor([6, 1])
    table[2, 0, 0] = torch.tensor([2, 1])  # image 2: one person, one joint
    push, pull = ae_loss(tags, table)
    assert push.tolist() == [0.0, 0.0, 0.0]
    t = tags.detach().view(3, -1)
    expected = ((t[1, 1] - t[1, 6]) / 2) ** 2  # mean of (t - m)^2 over the 2 joints
    assert pull[0].item() == 0.0 and pull[2].item() == 0.0
    assert pull[1].item() == pytest.approx(expected.item(), rel=1e-6)
    (push.sum() + pull.sum()).backward()
    assert torch.isfinite(tags.grad).all()
    assert tags.grad[0].abs().sum() == 0 and tags.grad[2].abs().sum() == 0
    assert tags.grad[1].abs().sum() > 0


def test_per_image_values_equal_single_image_batches():
    _, outputs, heatmaps, masks, joints = _load_case("seed1")
    loss = LitePoseLoss(17)
    batch = loss(outputs, heatmaps, masks, joints)
    for b in range(4):
        one = loss(
            [o[b : b + 1] for o in outputs],
            [h[b : b + 1] for h in heatmaps],
            [m[b : b + 1] for m in masks],
            [j[b : b + 1] for j in joints],
        )
        torch.testing.assert_close(one["total"], batch["total_per_image"][b])
    torch.testing.assert_close(batch["total_per_image"].mean(), batch["total"])


def test_factors_and_single_table():
    _, outputs, heatmaps, masks, joints = _load_case("seed2")
    base = LitePoseLoss(17)(outputs, heatmaps, masks, joints)
    scaled = LitePoseLoss(17, heatmap_factors=(2.0, 0.0), push_factor=3e-3, pull_factor=0.0)(
        outputs, heatmaps, masks, joints[0]
    )
    torch.testing.assert_close(scaled["heatmap"][0], 2 * base["heatmap"][0])
    assert scaled["heatmap"][1].item() == 0.0 and scaled["pull"].item() == 0.0
    torch.testing.assert_close(scaled["push"], 3 * base["push"])


def test_heatmap_loss_mask_keeps_denominator():
    pred = torch.ones(1, 2, 2, 2)
    gt = torch.zeros(1, 2, 2, 2)
    mask = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    assert heatmap_loss(pred, gt, mask).item() == pytest.approx(2 / 8)
    assert heatmap_loss(pred, gt).item() == pytest.approx(1.0)


def test_distillation_loss():
    student = torch.rand(2, 3, 8, 8, requires_grad=True)
    teacher = torch.full((2, 3, 14, 14), 0.25, requires_grad=True)
    loss = heatmap_distillation_loss(student, teacher)
    torch.testing.assert_close(loss, ((student - 0.25) ** 2).flatten(1).mean(1))
    loss.sum().backward()
    assert teacher.grad is None and student.grad is not None
    # nearest resizing (the original's) picks teacher pixels; a mask of zeros cancels everything
    t = torch.arange(16.0).view(1, 1, 4, 4)
    near = heatmap_distillation_loss(torch.zeros(1, 1, 2, 2), t, mode="nearest")
    assert near.item() == pytest.approx((0**2 + 2**2 + 8**2 + 10**2) / 4)
    assert heatmap_distillation_loss(student, teacher, torch.zeros(2, 8, 8)).abs().sum() == 0
    assert heatmap_distillation_loss(student, student.detach()).abs().sum() == 0


def test_bad_inputs_are_named():
    tags = torch.zeros(1, 2, 2, 2)
    table = _tiny_table({0: [(8, 1)]})
    with pytest.raises(ValueError, match="outside"):
        ae_loss(tags, table)
    with pytest.raises(ValueError, match="push type"):
        ae_loss(tags, _tiny_table({}), push_type="huber")
    with pytest.raises(ValueError, match="mask"):
        heatmap_loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="channels"):
        LitePoseLoss(2)(
            [torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 4, 4)],
            [torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 4, 4)],
            [None, None],
            table,
        )


def test_half_precision_outputs_give_float32_losses():
    case, outputs, heatmaps, masks, joints = _load_case("seed0")
    half = [o.detach().half().requires_grad_() for o in outputs]  # exact: the outputs are float16 values
    out = LitePoseLoss(17)(half, heatmaps, masks, joints)
    assert out["total"].dtype == torch.float32
    torch.testing.assert_close(out["total"], case["results"]["total_loss"], rtol=1e-6, atol=1e-8)
    out["total"].backward()
    assert half[0].grad.dtype == torch.float16 and half[0].grad[:, 17:].abs().sum() > 0
    dist = heatmap_distillation_loss(half[1][:, :17], outputs[1].detach())
    assert dist.dtype == torch.float32 and dist.abs().sum() == 0
