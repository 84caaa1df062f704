"""Every objective against a naive loop written straight from its docstring's formula.

The naive code loops over anchors, positives, negatives (and triplets) with scalar
operations only, computes the similarity itself, and knows nothing of the package's
masks or log-sum-exp helpers. Scalars are Python floats, or 0-dim tensors when a
gradient is needed (the helpers below accept both).
"""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.objectives import OBJECTIVES, build_objective

TOL = 1e-5

# ---------------------------------------------------------------- scalar helpers


def exp(v):
    return v.exp() if isinstance(v, torch.Tensor) else math.exp(v)


def log(v):
    return v.log() if isinstance(v, torch.Tensor) else math.log(v)


def sqrt(v):
    return v.sqrt() if isinstance(v, torch.Tensor) else math.sqrt(v)


def hinge(v):
    return v if v > 0 else 0.0 * v


def softplus(v):
    return log(1.0 + exp(v))


def sigmoid(v):
    return 1.0 / (1.0 + exp(-v))


def mean(values):
    values = list(values)
    return sum(values) / len(values)


def rows(t: torch.Tensor, scalars: bool):
    """A tensor as nested lists of floats, or of 0-dim tensors (keeping the graph)."""
    if scalars:
        return [[t[i, k] for k in range(t.shape[1])] for i in range(t.shape[0])]
    return t.tolist()


def unit(v):
    norm = sqrt(sum(a * a for a in v))
    return [a / norm for a in v]


def similarity(u, v, metric):
    if metric == "dot":
        return sum(a * b for a, b in zip(u, v, strict=True))
    if metric == "cosine":
        return similarity(unit(u), unit(v), "dot")
    sq = sum((a - b) * (a - b) for a, b in zip(u, v, strict=True))
    if metric == "sqeuclidean":
        return -sq
    if metric == "euclidean":
        return -sqrt(sq)
    raise ValueError(metric)


# ---------------------------------------------------------------- the problem as lists


class Problem:
    """Anchors, candidates, labels, scores S[i][j], distances D[i][j] and the index sets."""

    def __init__(self, x, labels, y=None, y_labels=None, *, metric, normalize, scalars=False):
        self.same = y is None
        xs = rows(x, scalars)
        ys = xs if self.same else rows(y, scalars)
        if normalize:
            xs = [unit(v) for v in xs]
            ys = xs if self.same else [unit(v) for v in ys]
        self.xs, self.ys = xs, ys
        self.a_labels = labels.tolist()
        self.c_labels = self.a_labels if self.same else y_labels.tolist()
        self.N, self.M = len(xs), len(ys)
        self.S = [[similarity(xs[i], ys[j], metric) for j in range(self.M)] for i in range(self.N)]
        if metric == "cosine":
            self.D = [[1.0 - s for s in row] for row in self.S]
        else:
            self.D = [[-s for s in row] for row in self.S]

    def P(self, i):
        """Positives of anchor i: candidates of its label, never itself."""
        return [
            j
            for j in range(self.M)
            if self.c_labels[j] == self.a_labels[i] and not (self.same and j == i)
        ]

    def Neg(self, i):
        return [j for j in range(self.M) if self.c_labels[j] != self.a_labels[i]]

    def pos_pairs(self):
        return [(i, j) for i in range(self.N) for j in self.P(i)]

    def neg_pairs(self):
        return [(i, j) for i in range(self.N) for j in self.Neg(i)]

    def anchors(self):
        """Anchors that have a positive (the others contribute nothing)."""
        return [i for i in range(self.N) if self.P(i)]


# ---------------------------------------------------------------- naive objectives


def naive_contrastive(p: Problem, margin):
    pull = mean(0.5 * p.D[i][j] ** 2 for i, j in p.pos_pairs())
    push = mean(0.5 * hinge(margin - p.D[i][j]) ** 2 for i, j in p.neg_pairs())
    return pull + push


def triplet_terms(p: Problem, margin, semihard):
    terms = []
    for a in range(p.N):
        for q in p.P(a):
            for n in p.Neg(a):
                d_ap, d_an = p.D[a][q], p.D[a][n]
                if semihard and not (d_ap < d_an < d_ap + margin):
                    continue
                terms.append(hinge(d_ap - d_an + margin))
    return terms


def naive_triplet(p: Problem, margin, semihard):
    terms = triplet_terms(p, margin, semihard)
    return mean(terms) if terms else 0.0


def naive_lifted(p: Problem, margin):
    """Song et al. eqs. 3-4; N(j) are the samples of the batch (anchors, with ref_*)
    labelled differently from j, at their distance to j."""
    total = []
    for i, j in p.pos_pairs():
        s = 0.0
        for k in p.Neg(i):
            s = s + exp(margin - p.D[i][k])
        if p.same:
            for l in p.Neg(j):  # noqa: E741
                s = s + exp(margin - p.D[j][l])
        else:
            for l in range(p.N):  # noqa: E741
                if p.a_labels[l] != p.c_labels[j]:
                    s = s + exp(margin - p.D[l][j])
        J = log(s) + p.D[i][j]
        total.append(hinge(J) ** 2)
    return sum(total) / (2 * len(total))


def naive_npair(p: Problem, l2_reg):
    per_anchor = []
    for i in p.anchors():
        per_pos = []
        for q in p.P(i):
            s = 0.0
            for n in p.Neg(i):
                s = s + exp(p.S[i][n] - p.S[i][q])
            per_pos.append(log(1.0 + s))
        per_anchor.append(mean(per_pos))
    loss = mean(per_anchor)
    sq_x = mean(sum(a * a for a in v) for v in p.xs)
    sq_y = mean(sum(a * a for a in v) for v in p.ys)
    return loss + l2_reg * (sq_x + sq_y) / 2


def naive_nce(p: Problem, temperature, freeze_z=False):
    valid = p.pos_pairs() + p.neg_pairs()
    log_mean = log(sum(exp(p.S[i][j] / temperature) for i, j in valid) / len(valid))
    if freeze_z and isinstance(log_mean, torch.Tensor):
        log_mean = log_mean.detach()  # Wu et al.: Z is a constant
    per_anchor = []
    for i in p.anchors():
        k = max(1, len(p.Neg(i)))

        def logit(j, i=i, k=k):
            return p.S[i][j] / temperature - log_mean - math.log(k)

        data = mean(-log(sigmoid(logit(q))) for q in p.P(i))
        noise = sum(-log(1.0 - sigmoid(logit(n))) for n in p.Neg(i))
        per_anchor.append(data + noise)
    return mean(per_anchor)


def naive_infonce(p: Problem, temperature):
    per_anchor = []
    for i in p.anchors():
        per_pos = []
        for q in p.P(i):
            num = exp(p.S[i][q] / temperature)
            den = num
            for n in p.Neg(i):
                den = den + exp(p.S[i][n] / temperature)
            per_pos.append(-log(num / den))
        per_anchor.append(mean(per_pos))
    return mean(per_anchor)


def naive_ntxent(p: Problem, temperature):
    per_anchor = []
    for i in p.anchors():
        den = 0.0
        for k in range(p.M):
            if not (p.same and k == i):
                den = den + exp(p.S[i][k] / temperature)
        per_anchor.append(mean(-log(exp(p.S[i][q] / temperature) / den) for q in p.P(i)))
    return mean(per_anchor)


def naive_jsd(p: Problem):
    return mean(softplus(-p.S[i][j]) for i, j in p.pos_pairs()) + mean(
        softplus(p.S[i][j]) for i, j in p.neg_pairs()
    )


def naive_nwj(p: Problem):
    joint = mean(p.S[i][j] for i, j in p.pos_pairs())
    marginal = mean(exp(p.S[i][j]) for i, j in p.neg_pairs())
    return -(joint - math.exp(-1.0) * marginal)


def naive_dv(p: Problem):
    joint = mean(p.S[i][j] for i, j in p.pos_pairs())
    marginal = mean(exp(p.S[i][j]) for i, j in p.neg_pairs())
    return -(joint - log(marginal))


NAIVE = {
    "contrastive": naive_contrastive,
    "triplet": naive_triplet,
    "lifted": naive_lifted,
    "npair": naive_npair,
    "nce": naive_nce,
    "infonce": naive_infonce,
    "ntxent": naive_ntxent,
    "jsd": naive_jsd,
    "nwj": naive_nwj,
    "dv": naive_dv,
}

# ---------------------------------------------------------------- inputs


def structure(kind: str, seed: int = 0):
    """(embeddings, labels, ref_embeddings, ref_labels) in float64."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    if kind == "views":  # two views per instance, labels = instance id
        return randn(12, 5), torch.arange(6).repeat(2), None, None
    if kind == "classes":  # 4 classes x 5 samples
        return randn(20, 6), torch.arange(4).repeat_interleave(5), None, None
    if kind == "singleton":  # 3 classes x 4 samples, plus an anchor alone in its class
        labels = torch.cat([torch.arange(3).repeat_interleave(4), torch.tensor([7])])
        return randn(13, 6), labels, None, None
    if kind == "ref":  # anchors vs a labelled queue; labels 8, 9 are absent from the queue
        labels = torch.tensor([0, 1, 2, 3, 8, 1, 9])
        ref_labels = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 4, 4, 3, 0, 5, 6, 1])
        return randn(7, 6), labels, randn(15, 6), ref_labels
    raise ValueError(kind)


STRUCTURES = ["views", "classes", "singleton", "ref"]


def check(name, kind, seed=0, **kwargs):
    x, labels, y, y_labels = structure(kind, seed)
    obj = build_objective(name, **kwargs)
    got = obj(x, labels, y, y_labels)
    p = Problem(x, labels, y, y_labels, metric=obj.metric, normalize=obj.normalize)
    want = NAIVE[name](p, **obj.hparams)
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(want, abs=TOL, rel=TOL), (name, kind, kwargs)
    return got.item()


MISSING = "objective {!r} has no naive reference: add a loop from its formula to NAIVE here"


def test_every_objective_has_a_naive_reference():
    missing = sorted(set(OBJECTIVES.names()) - set(NAIVE))
    assert not missing, "\n".join(MISSING.format(n) for n in missing)
    stale = sorted(set(NAIVE) - set(OBJECTIVES.names()))
    assert not stale, f"naive references of unregistered objectives {stale}: remove them"


@pytest.mark.parametrize("kind", STRUCTURES)
@pytest.mark.parametrize("name", OBJECTIVES.names())
def test_default_configuration(name, kind):
    if name not in NAIVE:
        pytest.fail(MISSING.format(name))
    check(name, kind)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("ntxent", {"similarity": "dot", "temperature": 0.7}),
        ("infonce", {"similarity": "sqeuclidean", "normalize": True, "temperature": 0.3}),
        ("contrastive", {"similarity": "euclidean", "normalize": False, "margin": 3.0}),
        ("contrastive", {"similarity": "cosine", "margin": 0.5}),
        ("triplet", {"similarity": "euclidean", "normalize": False, "margin": 1.0}),
        ("lifted", {"margin": 0.5}),
        ("nce", {"temperature": 0.5}),
        ("npair", {"l2_reg": 0.0}),
        ("npair", {"l2_reg": 0.25}),
        ("npair", {"similarity": "cosine"}),
        ("jsd", {"similarity": "cosine"}),
        ("nwj", {"normalize": True}),
        ("dv", {"similarity": "euclidean"}),
    ],
)
@pytest.mark.parametrize("kind", ["views", "classes", "ref"])
def test_non_default_configuration(name, kwargs, kind):
    check(name, kind, seed=1, **kwargs)


@pytest.mark.parametrize("kind", STRUCTURES)
def test_triplet_semihard(kind):
    # margin 0.5 on normalized squared distances (in [0, 4]) leaves semi-hard triplets
    # and also excludes some: the test sees both kinds
    value = check("triplet", kind, seed=2, semihard=1.0, margin=0.5)
    x, labels, y, y_labels = structure(kind, 2)
    p = Problem(x, labels, y, y_labels, metric="sqeuclidean", normalize=True)
    assert 0 < len(triplet_terms(p, 0.5, 1.0)) < len(triplet_terms(p, 0.5, 0.0))
    assert value != pytest.approx(naive_triplet(p, 0.5, 0.0), abs=1e-3)


def test_triplet_semihard_without_semihard_triplets_is_zero():
    # two tight clusters far apart: every negative is beyond D_ap + margin
    x = torch.tensor([[1.0, 0.0], [1.0, 0.01], [-1.0, 0.0], [-1.0, 0.01]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    obj = build_objective("triplet", semihard=1.0)
    assert obj(x, labels).item() == 0.0


def test_npair_l2_term():
    x, labels, y, y_labels = structure("ref", 3)
    base = build_objective("npair", l2_reg=0.0)(x, labels, y, y_labels)
    reg = build_objective("npair", l2_reg=0.5)(x, labels, y, y_labels)
    mean_sq = (x.pow(2).sum(1).mean() + y.pow(2).sum(1).mean()) / 2
    assert (reg - base).item() == pytest.approx(0.5 * mean_sq.item(), rel=1e-12)


def test_learned_critic_callable():
    """A callable similarity (the bilinear critic of DIM/DGI) is used as the score."""
    x, labels, y, y_labels = structure("ref", 4)
    w = torch.randn(6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))

    def bilinear(a, b):
        return a @ w @ b.T

    obj = build_objective("jsd", similarity=bilinear)
    p = Problem(x @ w, labels, y, y_labels, metric="dot", normalize=False)
    assert obj(x, labels, y, y_labels).item() == pytest.approx(naive_jsd(p), abs=TOL)


@pytest.mark.parametrize("kind", ["views", "ref"])
@pytest.mark.parametrize("name", ["infonce", "ntxent", "triplet", "contrastive", "lifted", "nce"])
def test_gradient_matches_naive(name, kind):
    """Autograd through the naive loops equals the vectorized gradient.

    For nce the partition estimate Z is held constant, as the docstring documents.
    """
    x, labels, y, y_labels = structure(kind, 5)
    x = x[:8].requires_grad_()
    labels = labels[:8]
    if y is not None:
        y = y[:9].requires_grad_()
        y_labels = y_labels[:9]
    obj = build_objective(name)
    inputs = [x] if y is None else [x, y]
    got = torch.autograd.grad(obj(x, labels, y, y_labels), inputs)
    p = Problem(x, labels, y, y_labels, metric=obj.metric, normalize=obj.normalize, scalars=True)
    extra = {"freeze_z": True} if name == "nce" else {}
    want = torch.autograd.grad(NAIVE[name](p, **obj.hparams, **extra), inputs)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-8, rtol=1e-6)
