"""Training losses of LitePose: masked heatmap MSE, associative-embedding pull/push, distillation.

All losses return one value per image (shape ``(B,)``) so that a trainer can average them over
the local batch, over DDP ranks, or weight them, without re-deriving anything. The batch value
of every loss is the plain mean of its per-image values, which is exactly what the original
LitePose / HigherHRNet trainer optimises (``lib/core/loss.py`` + ``lib/core/trainer.py``).

Conventions (the original's, see ``docs/training.md``):

- heatmap masks: ``(B, H, W)``, 1 = keep, 0 = ignore; ignored pixels stay in the denominator.
- joint table: ``(B, P, K, 2)`` integer, entry ``(k*H*W + int(y)*W + int(x), used)``: an index
  into the tag channels (``K..2K-1``) of the 1/4-resolution output viewed as ``(B, K*H*W)``.
  Unused slots are ``(0, 0)``; a person whose slots are all unused does not exist.

Half-precision (AMP) outputs are up-cast: every loss is computed and returned in float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PUSH_TYPES = ("exp", "max")


def _at_least_fp32(x: Tensor) -> Tensor:
    """Losses are computed in float32 (or float64) even for half-precision (AMP) outputs."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def heatmap_loss(pred: Tensor, gt: Tensor, mask: Tensor | None = None, fg_weight: float = 0.0) -> Tensor:
    """Masked MSE per image: mean over (K, H, W) of ``(pred - gt)^2 * mask``, shape ``(B,)``.

    ``mask`` is ``(B, H, W)`` (broadcast over joints) or ``None`` for no mask. Masked pixels
    count in the denominator, as in the original, so the value does not depend on how much
    of an image is ignored only through the numerator.

    ``fg_weight`` > 0 (litepose's option; 0 is the original) weighs each pixel by
    ``1 + fg_weight * gt``: the few pixels under a Gaussian peak, which plain MSE drowns in
    background, pull harder, so sparse peaks are learnt in far fewer steps.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"heatmap_loss: prediction {tuple(pred.shape)} and target {tuple(gt.shape)} differ")
    pred = _at_least_fp32(pred)
    gt = gt.to(pred.dtype)
    sq = (pred - gt) ** 2
    if fg_weight:
        sq = sq * (1 + fg_weight * gt)
    if mask is not None:
        if mask.shape != (pred.shape[0], *pred.shape[2:]):
            raise ValueError(
                f"heatmap_loss: mask {tuple(mask.shape)} does not match heatmaps {tuple(pred.shape)} "
                "(expected (B, H, W))"
            )
        sq = sq * mask.to(pred.dtype).unsqueeze(1)
    return sq.flatten(1).mean(1)


def ae_loss(tags: Tensor, joints: Tensor, push_type: str = "exp") -> tuple[Tensor, Tensor]:
    """Associative-embedding (push, pull) per image, each ``(B,)``, without any factor.

    ``tags``: the tag maps ``(B, K, H, W)`` (or already flattened ``(B, K*H*W)``), one tag
    value per joint type and pixel. ``joints``: the joint table ``(B, P, K, 2)``.

    Per image, over the ``n`` people with at least one used joint (tag means ``m_i``):
    pull = ``(1/n) sum_i mean_j (t_ij - m_i)^2`` (0 if n = 0); push ("exp") =
    ``0.5 * (sum_ij exp(-(m_i - m_j)^2) - n) / (n (n - 1))`` (0 if n < 2); push ("max")
    replaces ``exp(-d^2)`` by ``max(0, 1 - |d|)``. Fully vectorised: one gather, masked
    means over joints, and pairwise differences of the person means.
    """
    if push_type not in PUSH_TYPES:
        raise ValueError(f"ae_loss: unknown push type {push_type!r} (expected one of {PUSH_TYPES})")
    if joints.dim() != 4 or joints.shape[-1] != 2 or joints.shape[0] != tags.shape[0]:
        raise ValueError(f"ae_loss: joint table {tuple(joints.shape)} must be (B, P, K, 2) with B = {tags.shape[0]}")
    b, p, k = joints.shape[:3]
    flat = _at_least_fp32(tags.reshape(b, -1))
    index = joints[..., 0].reshape(b, p * k).long()
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= flat.shape[1]):
        raise ValueError(
            f"ae_loss: joint table indexes [{int(index.min())}, {int(index.max())}] outside the "
            f"{flat.shape[1]} tag values per image (tags {tuple(tags.shape)})"
        )
    used = joints[..., 1] > 0  # (B, P, K)
    weight = used.to(flat.dtype)
    t = flat.gather(1, index).view(b, p, k)

    count = weight.sum(2)  # joints per person (B, P)
    person = count > 0
    denom = count.clamp(min=1)
    mean = (t * weight).sum(2) / denom  # (B, P)
    pull_person = ((t - mean.unsqueeze(2)) ** 2 * weight).sum(2) / denom
    n = person.sum(1).to(flat.dtype)  # people per image (B,)
    pull = pull_person.sum(1) / n.clamp(min=1)

    diff = mean.unsqueeze(2) - mean.unsqueeze(1)  # (B, P, P)
    if push_type == "exp":
        sim = torch.exp(-(diff**2))
    else:
        sim = (1 - diff.abs()).clamp(min=0)
    # Distinct pairs only: the same as the original's "sum over all pairs minus n" (the
    # diagonal is exactly 1 with zero gradient) without its float32 cancellation when
    # the people's tags are far apart.
    pair = person.unsqueeze(2) & person.unsqueeze(1)
    pair &= ~torch.eye(p, dtype=torch.bool, device=pair.device)
    push = 0.5 * (sim * pair.to(flat.dtype)).sum((1, 2)) / (n * (n - 1)).clamp(min=1)
    return push, pull


@torch.no_grad()
def tag_separation(tags: Tensor, joints: Tensor) -> tuple[float, float, int]:
    """How well the tags tell people apart on ground-truth joints: ``(distance, spread, images)`` sums.

    Over the images with at least two people: ``distance`` sums each image's mean distance between
    different people's mean tags, ``spread`` each image's within-person spread (root mean square
    deviation of a person's tags from their mean, over all its people). The separation is
    ``distance / spread`` of the sums (a ratio of means, which a single image with near-zero
    spread cannot blow up): ~0 when the tags collapse to one value however small the pull loss
    is, well above 1 when people separate. Sums so that batches and ranks average exactly.
    """
    b, p, k = joints.shape[:3]
    flat = tags.reshape(b, -1).float()
    t = flat.gather(1, joints[..., 0].reshape(b, p * k).long()).view(b, p, k)
    w = (joints[..., 1] > 0).to(flat.dtype)
    count = w.sum(2)
    person = count > 0
    mean = (t * w).sum(2) / count.clamp(min=1)
    var = ((t - mean.unsqueeze(2)) ** 2 * w).sum((1, 2)) / count.sum(1).clamp(min=1)
    pair = person.unsqueeze(2) & person.unsqueeze(1) & ~torch.eye(p, dtype=torch.bool, device=tags.device)
    npair = pair.sum((1, 2))
    dist = ((mean.unsqueeze(2) - mean.unsqueeze(1)).abs() * pair).sum((1, 2)) / npair.clamp(min=1)
    ok = npair > 0
    return float(dist[ok].sum()), float(var[ok].sqrt().sum()), int(ok.sum())


def heatmap_distillation_loss(
    student: Tensor, teacher: Tensor, mask: Tensor | None = None, mode: str = "bilinear"
) -> Tensor:
    """Masked MSE between student and teacher heatmaps per image, ``(B,)``.

    The teacher is detached and, if its resolution differs, resized to the student's
    (``mode`` "bilinear" with align_corners=False, or "nearest" as the original did).
    ``mask`` is at the student's resolution, ``(B, H, W)``, or ``None``.
    """
    if student.shape[:2] != teacher.shape[:2]:
        raise ValueError(
            f"distillation: student heatmaps {tuple(student.shape)} and teacher {tuple(teacher.shape)} "
            "differ in batch or joint count"
        )
    target = _at_least_fp32(teacher.detach())
    if target.shape[2:] != student.shape[2:]:
        kw = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
        target = F.interpolate(target, size=student.shape[2:], mode=mode, **kw)
    return heatmap_loss(student, target, mask)


class LitePoseLoss(nn.Module):
    """The full LitePose training loss over the network's list of outputs.

    Output ``s`` holds ``K`` heatmaps (channels ``0..K-1``); outputs listed in
    ``tag_stages`` also hold ``K`` tag maps (channels ``K..2K-1``). Defaults are the original
    recipe: heatmap factor 1.0 at 1/4 and 1/2 resolution, push and pull factor 1e-3 with
    the "exp" push on the 1/4-resolution output only, and plain MSE (``fg_weight`` 0).

    ``forward`` returns a dict (factors applied everywhere):

    - ``heatmap_per_image``: list of ``(B,)`` per stage; ``heatmap``: list of batch means
    - ``push_per_image``, ``pull_per_image``: ``(B,)`` summed over tag stages; ``push``, ``pull``
    - ``total_per_image``: ``(B,)``; ``total``: its mean = sum of the batch means above,
      the scalar the original trainer back-propagates.
    """

    def __init__(
        self,
        num_joints: int,
        heatmap_factors: Sequence[float] = (1.0, 1.0),
        push_factor: float = 1e-3,
        pull_factor: float = 1e-3,
        push_type: str = "exp",
        tag_stages: Sequence[int] = (0,),
        fg_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if push_type not in PUSH_TYPES:
            raise ValueError(f"LitePoseLoss: unknown push type {push_type!r} (expected one of {PUSH_TYPES})")
        self.num_joints = int(num_joints)
        self.heatmap_factors = tuple(float(f) for f in heatmap_factors)
        self.push_factor = float(push_factor)
        self.pull_factor = float(pull_factor)
        self.push_type = push_type
        self.tag_stages = tuple(int(s) for s in tag_stages)
        self.fg_weight = float(fg_weight)

    def extra_repr(self) -> str:
        return (
            f"num_joints={self.num_joints}, heatmap_factors={self.heatmap_factors}, "
            f"push_factor={self.push_factor}, pull_factor={self.pull_factor}, "
            f"push_type={self.push_type!r}, tag_stages={self.tag_stages}, fg_weight={self.fg_weight}"
        )

    def forward(
        self,
        outputs: Sequence[Tensor],
        heatmaps: Sequence[Tensor],
        masks: Sequence[Tensor | None],
        joints: Tensor | Sequence[Tensor | None],
    ) -> dict:
        """Losses of one batch. ``joints``: one table (used for every tag stage) or one per stage."""
        n_stages = len(self.heatmap_factors)
        if not (len(outputs) == len(heatmaps) == len(masks) == n_stages):
            raise ValueError(
                f"LitePoseLoss: expected {n_stages} outputs, heatmaps and masks, got "
                f"{len(outputs)}, {len(heatmaps)}, {len(masks)}"
            )
        k = self.num_joints
        hm_img = []
        for s in range(n_stages):
            out = outputs[s]
            need = 2 * k if s in self.tag_stages else k
            if out.shape[1] < need:
                raise ValueError(f"LitePoseLoss: output {s} has {out.shape[1]} channels, needs {need}")
            hm_img.append(heatmap_loss(out[:, :k], heatmaps[s], masks[s], self.fg_weight) * self.heatmap_factors[s])

        ref = hm_img[0]
        push_img = torch.zeros_like(ref)
        pull_img = torch.zeros_like(ref)
        for s in self.tag_stages:
            table = joints if isinstance(joints, Tensor) else joints[s]
            push, pull = ae_loss(outputs[s][:, k : 2 * k], table, self.push_type)
            push_img = push_img + push * self.push_factor
            pull_img = pull_img + pull * self.pull_factor

        total_img = push_img + pull_img
        for h in hm_img:
            total_img = total_img + h
        return {
            "heatmap_per_image": hm_img,
            "heatmap": [h.mean() for h in hm_img],
            "push_per_image": push_img,
            "pull_per_image": pull_img,
            "push": push_img.mean(),
            "pull": pull_img.mean(),
            "total_per_image": total_img,
            "total": total_img.mean(),
        }
