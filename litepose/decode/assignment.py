"""Minimum-cost assignment with the original decoder's tie-breaking.

The grouping cost ``round(tag distance) * 100 - score`` is full of exact ties (every row
assigned pays the same scores, and rounded distances repeat), so *which* optimal assignment
a solver returns decides which person gets a joint. The reference outputs were produced with
the ``munkres`` package (3.x), a shortest-augmenting-path Hungarian method with a greedy warm
start. This module solves the same problem with the same deterministic choices (scanning
columns in order, first strict minimum), so decoding matches the original exactly; a
generic solver (e.g. ``scipy.optimize.linear_sum_assignment``) picks other optima on ties.
Matrices wider than the original ever built (more than 30 people) go to SciPy's solver.

The solver runs compiled (:mod:`litepose.decode._native`: the same float64 operations in the same
order, so the same columns) when the kernel library is available, else in Python.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linear_sum_assignment

from ._native import kernel

__all__ = ["min_cost_assignment"]

#: Widest matrix solved with the reference's tie-breaking (the original matched at most 30
#: people). Wider ones, which only the fixed decoder builds (every person found so far is a
#: candidate), go to SciPy's solver: an optimal assignment, fast, but exact cost ties may
#: resolve to another, equally cheap one.
_EXACT_TIES_UP_TO = 30


def min_cost_assignment(cost: np.ndarray | list[list[float]]) -> list[int]:
    """Column assigned to each row of a finite ``cost`` (n, m) with n <= m, minimising the sum.

    ``cost`` is an array or a list of rows (plain lists are cheaper for small problems).
    Warm start: each row is reduced by its minimum and takes the first still-free column at
    that minimum. Each row left over is then inserted along a shortest augmenting path
    (Dijkstra over reduced costs with row / column potentials), taking the first column on
    ties. Arithmetic is float64, in the order of the reference implementation. More than 30
    columns: SciPy's solver (optimal; ties may resolve differently).
    """
    array = isinstance(cost, np.ndarray)
    n, m = cost.shape if array else (len(cost), len(cost[0]) if cost else 0)
    if n > m:
        raise ValueError(f"min_cost_assignment needs rows <= columns, got {n} x {m}")
    if n == 0:
        return []
    # each row's first cheapest column (np.argmin: the first of equal minima, as list.index(min))
    first = cost.argmin(axis=1).tolist() if array else [row.index(min(row)) for row in cost]
    if len(set(first)) == n:  # every row's first cheapest column is its own: the warm start
        return first  # matches every row and nothing is left to augment
    if m > _EXACT_TIES_UP_TO:  # beyond the original's 30 people: any optimum, fast
        return wide_assignment(np.asarray(cost, np.float64)).tolist()
    solve = kernel("litepose_min_cost_assignment")
    if solve is not None:
        a = np.ascontiguousarray(cost, np.float64)
        col = np.empty(n, np.intc)
        if solve(a.ctypes.data, n, m, col.ctypes.data) == 0:
            return col.tolist()
    return _min_cost_assignment_py(cost.tolist() if array else cost)


def wide_assignment(cost: np.ndarray) -> np.ndarray:
    """:func:`min_cost_assignment`'s answer for a float64 ``cost`` of more than 30 columns whose rows'
    first cheapest columns are not all different: SciPy's solver, each row's column (int64)."""
    rows_, cols = linear_sum_assignment(cost)
    col = np.full(cost.shape[0], -1, np.int64)
    col[rows_] = cols
    return col


def _min_cost_assignment_py(rows: list[list[float]]) -> list[int]:
    """:func:`min_cost_assignment` in plain Python floats (fastest for small matrices)."""
    n, m = len(rows), len(rows[0])
    u = [0.0] * n  # row potentials
    v = [0.0] * (m + 1)  # column potentials; column m is a virtual start column
    owner = [-1] * (m + 1)  # row holding each column
    way = [0] * (m + 1)
    left = []
    for i, row in enumerate(rows):
        low = min(row)
        u[i] = low
        for j, c in enumerate(row):
            if c == low and owner[j] == -1:
                owner[j] = i
                break
        else:
            left.append(i)
    inf = math.inf
    for i in left:
        owner[m] = i
        j0 = m
        minv = [inf] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0 = owner[j0]
            ui = u[i0]
            row = rows[i0]
            for j in range(m):
                if not used[j]:
                    cur = row[j] - ui - v[j]
                    if cur < minv[j]:
                        minv[j] = cur
                        way[j] = j0
            delta, j1 = inf, -1
            for j in range(m):
                if not used[j] and minv[j] < delta:
                    delta, j1 = minv[j], j
            for j in range(m + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                elif minv[j] != inf:
                    minv[j] -= delta
            j0 = j1
            if owner[j0] == -1:
                break
        while j0 != m:  # flip the augmenting path
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    col = [-1] * n
    for j in range(m):
        if owner[j] >= 0:
            col[owner[j]] = j
    return col
