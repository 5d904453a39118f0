"""Training curves: loss, tag separation and AP against epochs and minutes, drawn to a PNG."""

from __future__ import annotations

from pathlib import Path

from ..data.jsonio import parse_json

__all__ = ["plot_training_curves"]


def plot_training_curves(metrics: str | Path, output: str | Path) -> Path | None:
    """Draw ``metrics.jsonl`` (one JSON row per epoch) to ``output``; ``None`` if there is nothing."""
    rows = []
    p = Path(metrics)
    if p.is_file():
        for line in p.read_text().splitlines():
            try:
                rows.append(parse_json(line, str(p)))
            except ValueError:  # a line cut short by a crash
                continue
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seps = [(r["epoch"], r["tag_separation"]) for r in rows if r.get("tag_separation") is not None]
    fig, axes = plt.subplots(1, 3 if seps else 2, figsize=(16 if seps else 11, 4))
    ep = [r["epoch"] for r in rows]
    ax = axes[0]
    for key, label in (("loss", "total"), ("heatmap_4", "heatmap 1/4"), ("heatmap_2", "heatmap 1/2")):
        ys = [r.get(key) for r in rows]
        if any(y is not None for y in ys):
            ax.plot(ep, ys, label=label, marker="." if len(ep) < 30 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title("training loss")
    ax.legend()
    ax.grid(alpha=0.3)
    if seps:
        # The embedding's health: people's mean tags apart over the within-person spread. A
        # value near 0 while the pull loss is tiny means the tags collapsed to one constant.
        ax = axes[2]
        ax.plot([e for e, _ in seps], [v for _, v in seps], color="tab:purple", marker="." if len(seps) < 30 else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel("between-people distance / within-person spread")
        ax.set_title("tag separation (training batches)")
        ax.grid(alpha=0.3)
    ax = axes[1]
    val = [r for r in rows if "ap" in r]
    if val:
        ax.plot([r["minutes"] for r in val], [r["ap"] for r in val], marker="o", label="AP")
        if any("ap50" in r for r in val):
            ax.plot([r["minutes"] for r in val], [r.get("ap50", 0) for r in val], marker="s", label="AP50")
        ax.legend()
    ax.set_xlabel("minutes")
    ax.set_ylabel("val AP")
    ax.set_ylim(0, 1)
    ax.set_title("validation")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
