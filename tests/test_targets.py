"""Training targets: parity with the original generators, and where litepose deliberately differs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import shared

from litepose.data.targets import gaussian_patch, joints_table, render_heatmaps


@pytest.fixture(scope="module")
def cases() -> list[dict]:
    return torch.load(shared("ref/targets_cases.pt"), weights_only=True)["cases"]


def _reference_rows(joints: np.ndarray, res: int) -> list[list[tuple[int, int]]]:
    """Per person, the packed (index, 1) entries by the original's rule, written as a plain loop."""
    rows = []
    for person in joints:
        entries = []
        for k, (x, y, v) in enumerate(person):
            ix, iy = int(x), int(y)
            if v > 0 and 0 <= ix < res and 0 <= iy < res:
                entries.append((k * res * res + iy * res + ix, 1))
        rows.append(entries)
    return rows


def _table_from_rows(rows: list[list[tuple[int, int]]], k: int, max_people: int = 30) -> np.ndarray:
    t = np.zeros((max_people, k, 2), dtype=np.int64)
    for i, entries in enumerate(rows):
        for s, e in enumerate(entries):
            t[i, s] = e
    return t


def test_heatmaps_equal_the_original(cases):
    for c in cases:
        hm = render_heatmaps(c["joints"].numpy(), c["output_res"], c["sigma"], c["num_joints"])
        assert hm.dtype == np.float32
        np.testing.assert_array_equal(hm, c["heatmaps"].numpy(), err_msg=c["name"])


def test_gaussian_patch_equals_the_original(cases):
    for c in cases:
        # float64 exp's last bit depends on numpy's SIMD path (AVX2 vs AVX-512 machines differ by 1 ulp);
        # the float32 heatmaps built from the patch are still compared bit for bit above.
        want = c["gaussian_patch"].numpy()
        np.testing.assert_allclose(gaussian_patch(c["sigma"]), want, rtol=4e-16, atol=0, err_msg=c["name"])


def test_legacy_table_equals_the_original(cases):
    checked = 0
    for c in cases:
        if c["joints_table"] is None:
            continue
        table = joints_table(c["joints"].numpy(), c["output_res"], 30, legacy=True)
        np.testing.assert_array_equal(table, c["joints_table"].numpy().astype(np.int64), err_msg=c["name"])
        checked += 1
    assert checked == 12


def test_table_gives_rows_only_to_people_with_used_joints(cases):
    """The default table is the original's with its empty rows (people without used joints) removed."""
    c = next(c for c in cases if c["name"] == "k17_r64_invisible_people")
    ref = c["joints_table"].numpy().astype(np.int64)
    empty = ref[:, :, 1].sum(1) == 0
    assert empty[[1, 3, 4]].all()  # the case's people without a used joint
    compact = np.zeros_like(ref)
    compact[: (~empty).sum()] = ref[~empty]
    np.testing.assert_array_equal(joints_table(c["joints"].numpy(), 64), compact)
    for c in cases:
        if c["joints_table"] is not None:
            ref = c["joints_table"].numpy().astype(np.int64)
            kept = ref[ref[:, :, 1].sum(1) > 0]
            mine = joints_table(c["joints"].numpy(), c["output_res"])
            np.testing.assert_array_equal(mine[: len(kept)], kept, err_msg=c["name"])
            assert not mine[len(kept) :].any()


def test_more_than_30_people_do_not_crash_and_keep_the_most_complete(cases):
    c = next(c for c in cases if c["name"] == "k17_r64_31people")
    assert c["joints_table"] is None and "IndexError" in c["joints_error"]  # the original crashed here
    joints = c["joints"].numpy()
    rows = _reference_rows(joints, 64)
    counts = np.array([len(r) for r in rows])
    keep = sorted(sorted(range(len(rows)), key=lambda i: (-counts[i], i))[:30])
    assert len(keep) == 30 and counts.argmin() not in keep
    table = joints_table(joints, 64)
    np.testing.assert_array_equal(table, _table_from_rows([rows[i] for i in keep], 17))
    # Heatmaps still include everyone, as the original.
    np.testing.assert_array_equal(render_heatmaps(joints, 64), c["heatmaps"].numpy())
    # The legacy table keeps people 0..29 by position instead of raising.
    np.testing.assert_array_equal(joints_table(joints, 64, legacy=True), _table_from_rows(rows[:30], 17))


def test_table_on_random_crowds_matches_a_plain_loop():
    rng = np.random.default_rng(0)
    for trial in range(20):
        p, k, res = int(rng.integers(0, 45)), int(rng.choice([14, 17])), int(rng.choice([64, 128]))
        joints = np.concatenate(
            [rng.uniform(-5, res + 5, (p, k, 2)), rng.integers(0, 3, (p, k, 1)).astype(float)], axis=-1
        )
        joints[rng.random(p) < 0.2] = 0  # people without keypoints
        rows = _reference_rows(joints, res)
        order = sorted((i for i in range(p) if rows[i]), key=lambda i: (-len(rows[i]), i))[:30]
        expected = _table_from_rows([rows[i] for i in sorted(order)], k)
        np.testing.assert_array_equal(joints_table(joints, res), expected, err_msg=f"trial {trial}")


def test_every_used_joint_is_a_peak_of_one():
    rng = np.random.default_rng(1)
    joints = np.concatenate([rng.uniform(-3, 131, (12, 17, 2)), rng.integers(0, 3, (12, 17, 1))], axis=-1)
    for res in (64, 128):
        hm = render_heatmaps(joints, res)
        assert hm.min() >= 0 and hm.max() <= 1
        has_joint = np.zeros(17, bool)
        for p in range(12):
            for k in range(17):
                x, y, v = joints[p, k]
                if v > 0 and 0 <= int(x) < res and 0 <= int(y) < res:
                    assert hm[k, int(y), int(x)] == 1.0
                    has_joint[k] = True
        np.testing.assert_array_equal(hm.reshape(17, -1).max(1) == 1.0, has_joint)
        np.testing.assert_array_equal(hm.reshape(17, -1).max(1) > 0, has_joint)
