"""Cost of the LitePose training loss (forward + backward) on this machine.

Times the whole loss, and compares its vectorised AE part with a straightforward per-image,
per-person loop over the same definitions (the shape of the original's older
``singleTagLoss``), written here only as a yardstick, at XS training size (256 px input:
outputs 64 and 128) for a batch of B images with P people each.

Usage: python benchmarks/loss.py [--batch B] [--people P] [--threads N] [--runs R]
"""

from __future__ import annotations

import argparse

import torch
from _timing import timed

from litepose.engine.loss import LitePoseLoss, ae_loss


def loop_ae(tags: torch.Tensor, joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-person AE loss (yardstick only)."""
    pushes, pulls = [], []
    for b in range(tags.shape[0]):
        flat = tags[b].reshape(-1)
        means, pull = [], tags.new_zeros(())
        for person in joints[b]:
            used = [int(i) for i, u in person.tolist() if u > 0]
            if not used:
                continue
            t = flat[used]
            means.append(t.mean())
            pull = pull + ((t - means[-1]) ** 2).mean()
        n = len(means)
        pulls.append(pull / max(n, 1))
        if n < 2:
            pushes.append(tags.new_zeros(()))
            continue
        m = torch.stack(means)
        d = m[:, None] - m[None, :]
        pushes.append(0.5 * (torch.exp(-(d**2)).sum() - n) / (n * (n - 1)))
    return torch.stack(pushes), torch.stack(pulls)


def make_batch(batch: int, people: int, k: int = 17, r: int = 64):
    outputs = [
        torch.randn(batch, 2 * k, r, r, requires_grad=True),
        torch.randn(batch, k, 2 * r, 2 * r, requires_grad=True),
    ]
    heatmaps = [torch.rand(batch, k, r, r), torch.rand(batch, k, 2 * r, 2 * r)]
    masks = [torch.ones(batch, r, r), torch.ones(batch, 2 * r, 2 * r)]
    joints = torch.zeros(batch, 30, k, 2, dtype=torch.int64)
    xy = torch.randint(0, r * r, (batch, people, k))
    joints[:, :people, :, 0] = torch.arange(k) * r * r + xy
    joints[:, :people, :, 1] = (torch.rand(batch, people, k) < 0.7).long()
    return outputs, heatmaps, masks, joints


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--people", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    outputs, heatmaps, masks, joints = make_batch(args.batch, args.people)
    loss = LitePoseLoss(17)

    tags = outputs[0][:, 17:]

    def full():
        loss(outputs, heatmaps, masks, joints)["total"].backward()

    def ae_vectorised():
        push, pull = ae_loss(tags, joints)
        (push.mean() + pull.mean()).backward()

    def ae_looped():
        push, pull = loop_ae(tags, joints)
        (push.mean() + pull.mean()).backward()

    print(f"batch {args.batch}, {args.people} people/image, {args.threads} threads, {args.runs} runs (min / median ms)")
    for name, fn in (("full loss", full), ("AE vectorised", ae_vectorised), ("AE per-person loop", ae_looped)):
        med, lo = timed(fn, args.runs)
        print(f"  {name:<20} fwd+bwd: {lo:8.2f} / {med:8.2f}")


if __name__ == "__main__":
    main()
