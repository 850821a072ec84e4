"""Fuzzing the public API with bad input: only clear errors may come out.

Hypothesis takes a valid call of a public function, breaks ONE argument (wrong rank, not a
tensor, integer dtype, empty batch, a NaN/inf, mismatched batch size or dimension, a dtype or
device mix, temperature <= 0 or non-finite, k larger than the index, ...) and checks that the call
raises ``ValueError`` or ``TypeError`` whose message names the broken argument. Any other
exception (an IndexError from deep inside torch, a RuntimeError about sizes) or a silently
returned NaN is a failure. Files are covered below by explicit cases (missing -> FileNotFoundError,
corrupt -> ValueError naming the sha256).

``test_every_public_loss_is_fuzzed`` keeps the list complete: a new loss in
``cl_teach.losses.__all__`` needs a case here.
"""
from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cl_teach import augment, losses, methods, metrics, models, ranking, retrieval

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CUDA = torch.cuda.is_available()


# --------------------------------------------------------------------------- the cases
@dataclass
class Case:
    """A valid call ``fn(**make(n, d, g))`` and what each argument must be.

    same_shape: groups of tensor arguments that must share (N, D).
    same_dim: (a, b) pairs that must share D only (a bank of negatives, an index and queries).
    temps: temperature-like arguments (finite, > 0). ints/floats: other hyper-parameters as
    ``name -> allow_zero``. seqs: list-of-(N, K)-tensor arguments. ks: ``name -> n_items``
    as a function of the valid kwargs. numpy_ok: tensors may also be NumPy arrays.
    converts_dtype: float tensors of different dtypes are cast to one (then a mix is no error).
    """
    name: str
    fn: Callable
    make: Callable[[int, int, torch.Generator], dict]
    same_shape: Sequence[tuple[str, ...]] = ()
    same_dim: Sequence[tuple[str, str]] = ()
    temps: Sequence[str] = ()
    ints: dict[str, bool] = field(default_factory=dict)
    floats: dict[str, bool] = field(default_factory=dict)
    seqs: Sequence[str] = ()
    labels: dict[str, str] = field(default_factory=dict)             # integer labels -> their features
    binary: Sequence[str] = ()                                       # labels that are 0/1 or bool flags
    probs: Sequence[str] = ()                                        # probabilities in [0, 1]
    ranges: Sequence[str] = ()                                       # (low, high) pairs
    finite: bool = True                                              # NaN/inf tensors refused
    masks: Sequence[str] = ()                                        # (N, N) boolean masks
    ks: dict[str, Callable[[dict], int]] = field(default_factory=dict)
    numpy_ok: bool = False
    converts_dtype: bool = False                                     # mixed float dtypes are cast
    min_n: int = 2
    rank: dict[str, tuple[int, ...]] = field(default_factory=dict)   # allowed ranks (default 2)
    may_be_empty: Sequence[str] = ()                                 # (0, D) is valid (an empty queue)

    def __repr__(self):
        return self.name


def _r(g, *shape):
    return torch.randn(*shape, generator=g)


def _index_search(vectors, queries, k):
    return retrieval.EmbeddingIndex().fit(vectors).search(queries, k)


def _knn(train_features, train_labels, test_features, test_labels, k=3, temperature=0.07):
    return metrics.knn_accuracy(train_features, train_labels, test_features, test_labels, k=k,
                                temperature=temperature)


PAIR = [("z1", "z2")]
CASES: list[Case] = [
    Case("info_nce", losses.info_nce,
         lambda n, d, g: dict(query=_r(g, n, d), key=_r(g, n, d), temperature=0.1, negatives=_r(g, n + 3, d)),
         same_shape=[("query", "key")], same_dim=[("query", "negatives")], temps=["temperature"]),
    Case("info_nce_logits", losses.info_nce_logits,
         lambda n, d, g: dict(query=_r(g, n, d), key=_r(g, n, d), temperature=0.1),
         same_shape=[("query", "key")], temps=["temperature"]),
    Case("nt_xent", losses.nt_xent, lambda n, d, g: dict(z1=_r(g, n, d), z2=_r(g, n, d), temperature=0.5),
         same_shape=PAIR, temps=["temperature"]),
    Case("alignment", losses.alignment, lambda n, d, g: dict(z1=_r(g, n, d), z2=_r(g, n, d), alpha=2.0),
         same_shape=PAIR, floats={"alpha": False}),
    Case("uniformity", losses.uniformity, lambda n, d, g: dict(z=_r(g, n, d), t=2.0), floats={"t": False}),
    Case("negative_cosine", losses.negative_cosine, lambda n, d, g: dict(p=_r(g, n, d), z=_r(g, n, d)),
         same_shape=[("p", "z")]),
    Case("barlow_twins_loss", losses.barlow_twins_loss,
         lambda n, d, g: dict(z1=_r(g, n, d), z2=_r(g, n, d), lambd=5e-3), same_shape=PAIR,
         floats={"lambd": True}),
    Case("cross_correlation", losses.cross_correlation,
         lambda n, d, g: dict(z1=_r(g, n, d), z2=_r(g, n, d), eps=1e-5), same_shape=PAIR,
         floats={"eps": True}),
    Case("clip_logits", losses.clip_logits,
         lambda n, d, g: dict(image_emb=_r(g, n, d), text_emb=_r(g, n, d), temperature=0.07),
         same_shape=[("image_emb", "text_emb")], temps=["temperature"]),
    Case("clip_loss", losses.clip_loss,
         lambda n, d, g: dict(image_emb=_r(g, n, d), text_emb=_r(g, n, d), temperature=0.07),
         same_shape=[("image_emb", "text_emb")], temps=["temperature"]),
    Case("simcse_loss", losses.simcse_loss,
         lambda n, d, g: dict(z1=_r(g, n, d), z2=_r(g, n, d), temperature=0.05, hard_negatives=_r(g, n, d)),
         same_shape=[("z1", "z2", "hard_negatives")], temps=["temperature"]),
    Case("sinkhorn", losses.sinkhorn, lambda n, d, g: dict(scores=_r(g, n, d), n_iters=3, epsilon=0.05),
         ints={"n_iters": True}, floats={"epsilon": False}),
    Case("swav_loss", losses.swav_loss,
         lambda n, d, g: dict(global_scores=[_r(g, n, d), _r(g, n, d)], local_scores=[_r(g, n, d)],
                              temperature=0.1, n_iters=3, epsilon=0.05),
         seqs=["global_scores", "local_scores"], temps=["temperature"], ints={"n_iters": True},
         floats={"epsilon": False}),
    Case("dino_loss", losses.dino_loss,
         lambda n, d, g: dict(student_out=[_r(g, n, d), _r(g, n, d)], teacher_out=[_r(g, n, d), _r(g, n, d)],
                              center=_r(g, d), student_temperature=0.1, teacher_temperature=0.04),
         seqs=["student_out", "teacher_out"], temps=["student_temperature", "teacher_temperature"],
         rank={"center": (1, 2)}),
    Case("random_resized_crop", augment.random_resized_crop,
         lambda n, d, g: dict(x=torch.rand(n, 1, d + 4, d + 4, generator=g), scale=(0.25, 1.0),
                              ratio=(0.75, 1.33)),
         rank={"x": (4,)}, ranges=["scale", "ratio"], finite=False),
    Case("color_jitter", augment.color_jitter,
         lambda n, d, g: dict(x=torch.rand(n, 3, d, d, generator=g), brightness=0.4, contrast=0.4,
                              saturation=0.4, p=0.8),
         rank={"x": (4,)}, floats={"brightness": True, "contrast": True, "saturation": True}, probs=["p"],
         finite=False),
    Case("random_grayscale", augment.random_grayscale,
         lambda n, d, g: dict(x=torch.rand(n, 3, d, d, generator=g), p=0.2), rank={"x": (4,)}, probs=["p"],
         finite=False),
    Case("gaussian_blur", augment.gaussian_blur,
         lambda n, d, g: dict(x=torch.rand(n, 1, d + 4, d + 4, generator=g), sigma=(0.1, 1.0), p=0.5,
                              kernel_size=3),
         rank={"x": (4,)}, ranges=["sigma"], probs=["p"], finite=False),
    Case("Augment", lambda x: augment.Augment()(x),
         lambda n, d, g: dict(x=torch.rand(n, 1, d + 4, d + 4, generator=g)),
         rank={"x": (4,)}, finite=False),
    Case("masked_info_nce", losses.masked_info_nce,
         lambda n, d, g: dict(query=_r(g, n, d), key=_r(g, n, d), same=torch.eye(n, dtype=torch.bool),
                              temperature=0.05),
         same_shape=[("query", "key")], temps=["temperature"], masks=["same"]),
    Case("index_nce", losses.index_nce,
         lambda n, d, g: dict(query=_r(g, n, d), candidates=_r(g, n + 3, d), target=torch.arange(n),
                              false_negatives=torch.eye(n, n + 3, dtype=torch.bool), temperature=0.1),
         same_dim=[("query", "candidates")], temps=["temperature"], labels={"target": "query"},
         masks=["false_negatives"]),
    Case("queue_nce", losses.queue_nce,       # the queue is cast to key's dtype: no dtype-mix case for it
         lambda n, d, g: dict(query=_r(g, n, d), key=_r(g, n, d), queue=_r(g, n + 3, d), temperature=0.07),
         same_shape=[("query", "key")], temps=["temperature"], may_be_empty=["queue"]),
    Case("contrastive_pair_loss", losses.contrastive_pair_loss,
         lambda n, d, g: dict(x1=_r(g, n, d), x2=_r(g, n, d), same=torch.arange(n) % 2 == 0, margin=1.0),
         same_shape=[("x1", "x2")], floats={"margin": False}, labels={"same": "x1"}, binary=["same"]),
    Case("triplet_loss", losses.triplet_loss,
         lambda n, d, g: dict(anchor=_r(g, n, d), positive=_r(g, n, d), negative=_r(g, n, d), margin=0.2),
         same_shape=[("anchor", "positive", "negative")], floats={"margin": False}),
    Case("batch_triplet_loss", losses.batch_triplet_loss,             # n >= 4: every class repeats
         lambda n, d, g: dict(embeddings=_r(g, n, d), labels=torch.arange(n) % 2, margin=0.2,
                              mining="semi-hard"),
         labels={"labels": "embeddings"}, floats={"margin": False}, min_n=4),
    Case("n_pair_loss", losses.n_pair_loss,
         lambda n, d, g: dict(anchor=_r(g, n, d), positive=_r(g, n, d), l2_reg=0.002),
         same_shape=[("anchor", "positive")], floats={"l2_reg": True}),
    Case("supcon_loss", losses.supcon_loss,
         lambda n, d, g: dict(features=_r(g, n, 2, d), labels=torch.arange(n) % 2, temperature=0.1),
         labels={"labels": "features"}, temps=["temperature"], rank={"features": (2, 3)}),
    Case("debiased_info_nce", losses.debiased_info_nce,
         lambda n, d, g: dict(z1=_r(g, n, d), z2=_r(g, n, d), temperature=0.5, tau_plus=0.1),
         same_shape=PAIR, temps=["temperature"], floats={"tau_plus": True}),
    Case("self_guided_loss", losses.self_guided_loss,
         lambda n, d, g: dict(c=_r(g, n, d), h=_r(g, n, 3, d), temperature=0.01),
         temps=["temperature"], rank={"h": (3,)}),
    Case("weight_distance", losses.weight_distance,                  # modules, not tensors: valid call only
         lambda n, d, g: dict(tuned=torch.nn.Linear(d, n), fixed=torch.nn.Linear(d, n))),
    Case("koleo_loss", losses.koleo_loss, lambda n, d, g: dict(x=_r(g, n, d), eps=1e-8),
         floats={"eps": False}),
    Case("cross_modal_recall",
         lambda image_emb, text_emb, ks: ranking.cross_modal_recall(image_emb, text_emb, ks=ks),
         lambda n, d, g: dict(image_emb=_r(g, n, d), text_emb=_r(g, n, d), ks=(1, 2)),
         same_shape=[("image_emb", "text_emb")], ks={"ks": lambda kw: kw["image_emb"].shape[0]}),
    Case("zero_shot_predict", ranking.zero_shot_predict,
         lambda n, d, g: dict(image_emb=_r(g, n, d), class_emb=_r(g, 3, d)),
         same_dim=[("image_emb", "class_emb")]),
    Case("feature_std", metrics.feature_std, lambda n, d, g: dict(z=_r(g, n, d))),
    Case("effective_rank", metrics.effective_rank, lambda n, d, g: dict(z=_r(g, n, d))),
    Case("singular_values", metrics.singular_values, lambda n, d, g: dict(z=_r(g, n, d)), min_n=1),
    Case("knn_accuracy", _knn,
         lambda n, d, g: dict(train_features=_r(g, n + 3, d), train_labels=torch.arange(n + 3) % 3,
                              test_features=_r(g, n, d), test_labels=torch.arange(n) % 3, k=3,
                              temperature=0.07),
         same_dim=[("train_features", "test_features")], temps=["temperature"],
         ks={"k": lambda kw: kw["train_features"].shape[0]}, converts_dtype=True,
         labels={"train_labels": "train_features", "test_labels": "test_features"}),
    Case("brute_force_search", retrieval.brute_force_search,
         lambda n, d, g: dict(vectors=_r(g, n + 3, d), queries=_r(g, n, d), k=2),
         same_dim=[("vectors", "queries")], ks={"k": lambda kw: kw["vectors"].shape[0]}, numpy_ok=True,
         converts_dtype=True),
    Case("EmbeddingIndex.search", _index_search,
         lambda n, d, g: dict(vectors=_r(g, n + 3, d), queries=_r(g, n, d), k=2),
         same_dim=[("vectors", "queries")], ks={"k": lambda kw: kw["vectors"].shape[0]}, numpy_ok=True,
         converts_dtype=True),
]

BAD_TEMPERATURES = [0, 0.0, -0.1, -1, float("nan"), float("inf"), float("-inf"), "0.1", None, True,
                    torch.tensor([0.1, 0.2]), torch.tensor(0.0), torch.tensor(float("nan")), 1j]


def _bad_numbers(allow_zero: bool, integer: bool) -> list:
    bad = [-1, -0.5, float("nan"), float("inf"), "2", None, True, [1]]
    if not allow_zero:
        bad.append(0)
    if integer:
        bad.append(2.5)
    return bad


def _tensor_args(case: Case, kw: dict) -> list[str]:
    return [k for k, v in kw.items() if isinstance(v, torch.Tensor) and k not in case.labels]


def _partners(case: Case, name: str) -> list[str]:
    out = [a for grp in case.same_shape if name in grp for a in grp if a != name]
    out += [b if a == name else a for a, b in case.same_dim if name in (a, b)]
    return out


# --------------------------------------------------------------------------- mutations
def _mutations(case: Case, kw: dict) -> list[tuple[str, str]]:
    """Every (argument, kind of damage) that must be refused for this case."""
    muts = []
    for name in _tensor_args(case, kw):
        if name in case.masks:
            muts += [(name, m) for m in ("mask_shape", "mask_float", "not_tensor")]
            continue
        muts += [(name, m) for m in ("rank", "not_tensor", "int_dtype", "empty") if not (
            m == "empty" and name in case.may_be_empty)]
        muts += [(name, "nonfinite")] if case.finite else []
        if _partners(case, name):
            muts += [(name, "dim_mismatch")] + ([] if case.converts_dtype else [(name, "dtype_mix")])
            if CUDA:
                muts.append((name, "device_mix"))
        if any(name in grp for grp in case.same_shape):
            muts.append((name, "batch_mismatch"))
    for name in case.seqs:
        muts += [(name, m) for m in ("seq_not_list", "seq_element_rank", "seq_element_nonfinite",
                                     "seq_element_dim", "seq_element_int")]
    for name in case.labels:
        muts += [(name, m) for m in ("labels_rank", "labels_float", "labels_bool", "labels_length",
                                     "not_tensor") if not (m == "labels_bool" and name in case.binary)]
        muts += [(name, "labels_not_binary")] if name in case.binary else []
    muts += [(name, "temperature") for name in case.temps]
    muts += [(name, "int") for name in case.ints] + [(name, "float") for name in case.floats]
    muts += [(name, "k") for name in case.ks]
    muts += [(name, "prob") for name in case.probs] + [(name, "range") for name in case.ranges]
    return muts


def _damage(case: Case, kw: dict, name: str, kind: str, data) -> tuple[dict, list[str]]:
    """Return broken kwargs and the argument names an acceptable message may mention."""
    kw = dict(kw)
    v = kw.get(name)
    names = [name]
    draw = data.draw
    if kind == "rank":
        allowed = case.rank.get(name, (2,))
        ndim = draw(st.sampled_from([r for r in (0, 1, 3, 4) if r not in allowed]), label="ndim")
        shape = draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim), label="shape")
        kw[name] = torch.randn(tuple(shape))
    elif kind == "not_tensor":
        param = inspect.signature(case.fn).parameters.get(name)
        optional = param is not None and param.default is None       # None means "not given"
        options = ([] if optional else [None]) + ["abc", 3, 2.5, v.tolist()]
        if not case.numpy_ok:
            options.append(v.numpy())
        kw[name] = draw(st.sampled_from(options), label="value")
    elif kind == "int_dtype":
        if case.numpy_ok:                       # an integer matrix is fine for a Faiss index,
            kw[name] = v.to(torch.complex64)    # a complex one is not
        else:
            kw[name] = (v * 3).to(draw(st.sampled_from([torch.int64, torch.int32, torch.bool]),
                                       label="dtype"))
    elif kind == "empty":
        shape = list(v.shape)
        axis = draw(st.integers(0, len(shape) - 1), label="axis")
        shape[axis] = 0
        kw[name] = torch.empty(tuple(shape))
    elif kind == "nonfinite":
        x = v.clone()
        i = draw(st.integers(0, x.numel() - 1), label="index")
        x.view(-1)[i] = draw(st.sampled_from([float("nan"), float("inf"), float("-inf")]), label="bad")
        kw[name] = x
    elif kind == "dim_mismatch":
        extra = draw(st.integers(1, 3), label="extra")
        kw[name] = torch.randn(v.shape[0], v.shape[1] + extra)
        names += _partners(case, name)
    elif kind == "batch_mismatch":
        extra = draw(st.integers(1, 3), label="extra")
        kw[name] = torch.randn(v.shape[0] + extra, v.shape[1])
        names += _partners(case, name)
    elif kind == "dtype_mix":
        kw[name] = v.to(draw(st.sampled_from([torch.float64, torch.bfloat16, torch.float16]), label="dtype"))
        names += _partners(case, name)
    elif kind == "device_mix":
        kw[name] = v.cuda()
        names += _partners(case, name)
    elif kind.startswith("seq_"):
        seq = list(v)
        i = draw(st.integers(0, len(seq) - 1), label="element")
        x = seq[i]
        if kind == "seq_not_list":
            kw[name] = draw(st.sampled_from(["abc", 3, None]), label="value")
        elif kind == "seq_element_rank":
            seq[i] = x[0]
        elif kind == "seq_element_nonfinite":
            x = x.clone()
            x.view(-1)[draw(st.integers(0, x.numel() - 1), label="index")] = float("nan")
            seq[i] = x
        elif kind == "seq_element_dim":
            seq[i] = torch.randn(x.shape[0], x.shape[1] + 1)
        elif kind == "seq_element_int":
            seq[i] = x.long()
        if kind != "seq_not_list":
            kw[name] = seq
        names = [name]
    elif kind == "labels_rank":
        kw[name] = v[:, None]
    elif kind == "labels_float":
        kw[name] = v.float()
    elif kind == "labels_bool":
        kw[name] = v > 0
    elif kind == "labels_not_binary":
        x = v.long().clone()
        x[draw(st.integers(0, len(x) - 1), label="index")] = draw(st.sampled_from([2, -1, 5]), label="bad")
        kw[name] = x
    elif kind == "labels_length":
        kw[name] = torch.cat([v, v[:draw(st.integers(1, len(v)), label="extra")]])
    elif kind == "temperature":
        kw[name] = draw(st.sampled_from(BAD_TEMPERATURES), label="temperature")
    elif kind in ("int", "float"):
        allow_zero = (case.ints if kind == "int" else case.floats)[name]
        kw[name] = draw(st.sampled_from(_bad_numbers(allow_zero, kind == "int")), label="value")
    elif kind == "mask_shape":
        kw[name] = torch.ones(v.shape[0] + 1, v.shape[0], dtype=torch.bool)
    elif kind == "mask_float":
        kw[name] = v.float()
    elif kind == "prob":
        kw[name] = draw(st.sampled_from([-0.1, 1.5, float("nan"), float("inf"), "0.5", None]), label="p")
    elif kind == "range":
        lo, hi = v
        kw[name] = draw(st.sampled_from([(hi, lo / 2), (-lo, hi), (lo,), "ab", None, (lo, float("nan"))]),
                        label="pair")
    elif kind == "k" and isinstance(v, tuple):                        # a tuple of cut-offs
        n_items = case.ks[name](kw)
        kw[name] = draw(st.sampled_from([(1, n_items + 1), (0,), (1, -2), (1.5,), "3", None]), label="ks")
    elif kind == "k":
        n_items = case.ks[name](kw)
        kw[name] = draw(st.sampled_from([n_items + 1, n_items + 100, 0, -2, 2.0, "3", None]), label="k")
    else:  # pragma: no cover
        raise AssertionError(kind)
    return kw, names


def _assert_clear_error(case: Case, kw: dict, names: list[str], what: str):
    try:
        out = case.fn(**kw)
    except (ValueError, TypeError) as e:
        msg = str(e)
        if not any(re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", msg) for n in names):
            raise AssertionError(f"{case.name} with {what}: the error does not name {names}: {msg!r}") from e
        return
    except Exception as e:  # noqa: BLE001 - anything else is the failure we look for
        raise AssertionError(f"{case.name} with {what}: expected ValueError/TypeError naming {names}, "
                             f"got {type(e).__name__}: {e}") from e
    raise AssertionError(f"{case.name} with {what}: accepted the bad input and returned {out!r:.200}")


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_valid_call_works(case):
    """The reference call each mutation starts from must itself succeed (else the fuzz proves nothing)."""
    g = torch.Generator().manual_seed(0)
    case.fn(**case.make(max(case.min_n, 4), 5, g))


MUTATIONS = [(c, name, kind) for c in CASES
             for name, kind in _mutations(c, c.make(4, 5, torch.Generator().manual_seed(0)))]


@pytest.mark.parametrize("case,name,kind", MUTATIONS, ids=[f"{c.name}-{n}-{k}" for c, n, k in MUTATIONS])
@settings(SETTINGS, max_examples=8)
@given(data=st.data())
def test_bad_input_gives_a_clear_error(case, name, kind, data):
    """Every (function, argument, kind of damage) pair; Hypothesis varies sizes, positions, values."""
    n = data.draw(st.integers(max(case.min_n, 2), 6), label="N")
    d = data.draw(st.integers(2, 6), label="D")
    kw = case.make(n, d, torch.Generator().manual_seed(data.draw(st.integers(0, 2**16), label="seed")))
    bad, names = _damage(case, kw, name, kind, data)
    _assert_clear_error(case, bad, names, f"{name} broken by {kind}")


def test_every_public_loss_is_fuzzed():
    covered = {c.name for c in CASES}
    missing = sorted(set(losses.__all__) - covered)
    assert not missing, f"add a Case for these public losses to tests/test_fuzz.py: {missing}"


# --------------------------------------------------------------------------- not-tensor APIs
def _expect(exc, names_: Sequence[str], fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert any(n in msg for n in names_), f"{fn.__name__}: {msg!r} does not name {names_}"


@SETTINGS
@given(n=st.integers(1, 8), extra=st.integers(1, 50))
def test_loader_batch_larger_than_data(n, extra):
    from cl_teach.data import TensorLoader, ViewLoader
    _expect(ValueError, ["batch_size"], TensorLoader, torch.rand(n, 1, 4, 4), batch_size=n + extra)
    _expect(ValueError, ["batch_size"], ViewLoader, torch.rand(n, 1, 4, 4), [_identity], batch_size=n + extra)


def _identity(x, g):
    return x


@pytest.mark.parametrize("bad", [0, -1, 2.5, "8", None, True])
def test_loader_bad_batch_size(bad):
    from cl_teach.data import TensorLoader, ViewLoader
    _expect((ValueError, TypeError), ["batch_size"], TensorLoader, torch.rand(8, 1, 4, 4), batch_size=bad)
    _expect((ValueError, TypeError), ["batch_size"], ViewLoader, torch.rand(8, 1, 4, 4), [_identity],
            batch_size=bad)


@pytest.mark.parametrize("x", [torch.rand(2, 28, 28), torch.rand(28, 28), torch.rand(0, 1, 28, 28),
                               np.zeros((2, 1, 28, 28)), None])
def test_augment_bad_images(x):
    from cl_teach.augment import Augment
    _expect((ValueError, TypeError), ["x"], Augment(), x)


@pytest.mark.parametrize("kw,name", [({"strength": -1}, "strength"), ({"strength": float("nan")}, "strength"),
                                     ({"crop_scale": (0.0, 1.0)}, "crop_scale"),
                                     ({"crop_scale": (0.9, 0.5)}, "crop_scale")])
def test_augment_bad_parameters(kw, name):
    from cl_teach.augment import Augment
    _expect((ValueError, TypeError), [name], Augment, **kw)


@pytest.mark.parametrize("kw,name", [({"steps": 0}, "steps"), ({"steps": -3}, "steps"),
                                     ({"steps": 1.5}, "steps"), ({"epochs": 0}, "epochs"),
                                     ({"lr": 0}, "lr"), ({"lr": float("nan")}, "lr")])
def test_fit_bad_arguments(kw, name):
    from cl_teach.data import TensorLoader
    from cl_teach.methods import SimCLR
    from cl_teach.models import SmallCNN
    from cl_teach.train import fit
    loader = TensorLoader(torch.rand(8, 1, 28, 28), batch_size=4)
    _expect((ValueError, TypeError), [name], fit, SimCLR(SmallCNN()), loader, progress=False, **kw)


def test_fit_rejects_non_method():
    from cl_teach.train import fit
    _expect(TypeError, ["method"], fit, torch.nn.Linear(2, 2), [torch.rand(2, 2)], steps=1, progress=False)


def test_method_rejects_batch_without_two_views():
    from cl_teach.methods import SimCLR
    from cl_teach.models import SmallCNN
    _expect(ValueError, ["batch"], SimCLR(SmallCNN()).training_step, (torch.rand(4, 1, 28, 28),))


@pytest.mark.parametrize("x", [torch.rand(2, 3, 28, 28), torch.rand(1, 28, 28)])
def test_encoder_wrong_input_shape(x):
    from cl_teach.models import SmallCNN
    _expect(ValueError, ["x"], SmallCNN(), x)


@pytest.mark.parametrize("kw", [{"k": 0}, {"k": 11}, {"k": 2.0}, {"k": True}])
def test_knn_k_larger_than_bank(kw):
    f, y = torch.randn(10, 4), torch.arange(10) % 2
    _expect((ValueError, TypeError), ["k"], metrics.knn_accuracy, f, y, f, y, **kw)


@pytest.mark.parametrize("labels", [torch.rand(10), torch.arange(9), [0] * 10])
def test_knn_bad_labels(labels):
    f = torch.randn(10, 4)
    _expect((ValueError, TypeError), ["train_labels"], metrics.knn_accuracy, f, labels, f,
            torch.arange(10) % 2, k=3)


@pytest.mark.parametrize("labels", [torch.arange(9), torch.rand(10), [0] * 10])
def test_linear_probe_bad_labels(labels):
    _expect((ValueError, TypeError), ["labels"], metrics.LinearProbe().fit, torch.randn(10, 4), labels)


def test_index_search_before_fit_and_bad_kind():
    _expect(RuntimeError, ["fit"], retrieval.EmbeddingIndex().search, torch.randn(2, 4), 1)
    _expect(ValueError, ["kind"], retrieval.EmbeddingIndex(kind="annoy").fit, torch.randn(8, 4))


@pytest.mark.parametrize("k", [0, 4, 2.0])
def test_ranking_metrics_bad_k(k):
    retrieved = np.array([[1, 2, 3], [4, 5, 6]])
    _expect((ValueError, TypeError), ["k"], ranking.recall_at_k, retrieved, [{1}, {5}], k=k)


def test_ranking_metrics_mismatched_queries():
    _expect(ValueError, ["relevant"], ranking.recall_at_k, np.array([[1, 2], [3, 4]]), [{1}])


@pytest.mark.parametrize("seed", [1.5, "0", None, True])
def test_seed_must_be_int(seed):
    from cl_teach import seed_everything
    _expect(TypeError, ["seed"], seed_everything, seed)


@pytest.mark.parametrize("threads", [0, -1, 1.5, "2"])
def test_setup_bad_threads(threads):
    import cl_teach
    before = torch.get_num_threads()
    try:
        _expect((ValueError, TypeError), ["threads"], cl_teach.setup, 0, threads=threads, verbose=False)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("prefer", ["tpu", "gpu", 3])
def test_get_device_bad_name(prefer):
    from cl_teach import get_device
    _expect((ValueError, TypeError), ["prefer"], get_device, prefer)


# --------------------------------------------------------------------------- files
def test_missing_fashion_mnist_is_file_not_found(tmp_path, monkeypatch):
    from cl_teach.data import images
    monkeypatch.setattr(images, "DEBIAN_FASHION_DIR", tmp_path / "nothing")
    monkeypatch.setenv("CL_TEACH_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("CL_TEACH_FASHION_MNIST", raising=False)
    _expect(FileNotFoundError, ["fashion", "Fashion"], images.load_fashion_mnist, "train",
            root=tmp_path / "missing", fallback=False)


def test_bad_split_names():
    from cl_teach.data import load_fashion_mnist, load_weibo
    _expect(ValueError, ["split"], load_fashion_mnist, "validation")
    _expect(ValueError, ["split"], load_weibo, "train")


@SETTINGS
@given(blob=st.binary(max_size=64))
def test_corrupt_idx_file(blob):
    import gzip
    import tempfile
    from pathlib import Path

    from cl_teach.data import read_idx
    if len(blob) >= 4 and blob[:3] == b"\x00\x00\x08":
        return                                           # a valid header; covered by the truncation case
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "bad-idx1-ubyte.gz"
        p.write_bytes(gzip.compress(blob))
        _expect(ValueError, [str(p)], read_idx, p)


def test_truncated_idx_file(tmp_path):
    from cl_teach.data import read_idx
    p = tmp_path / "t10k-images-idx3-ubyte"
    p.write_bytes(b"\x00\x00\x08\x03" + (10).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\x00" * 100)
    _expect(ValueError, ["truncated"], read_idx, p)


def test_missing_idx_file(tmp_path):
    from cl_teach.data import read_idx
    _expect(FileNotFoundError, ["nope"], read_idx, tmp_path / "nope-idx1-ubyte.gz")


def test_weibo_missing_and_corrupt(tmp_path, monkeypatch):
    from cl_teach.data import weibo
    monkeypatch.setattr(weibo, "weibo_dirs", lambda root=None: [tmp_path])
    _expect(FileNotFoundError, ["valid_post.txt"], weibo.load_weibo, "valid")
    for kind in ("post", "tag", "conv"):
        (tmp_path / f"valid_{kind}.txt").write_text("a\n", encoding="utf-8")
    _expect(ValueError, ["sha256"], weibo.load_weibo, "valid")


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_retrieval_casts_other_float_dtypes(dtype):
    """Mixed float dtypes are no error for the index (everything becomes float32 for Faiss)."""
    v, q = torch.randn(10, 4), torch.randn(3, 4)
    _, ids = retrieval.EmbeddingIndex().fit(v.to(dtype)).search(q, 2)
    _, ids32 = retrieval.EmbeddingIndex().fit(v.to(dtype).float()).search(q, 2)
    assert (ids == ids32).all()


def test_missing_image_text_sources(tmp_path):
    from cl_teach.data.clipart import load_clipart
    from cl_teach.data.emoji import load_emoji
    _expect(FileNotFoundError, ["font"], load_emoji, font=tmp_path / "NotoColorEmoji.ttf", cache=False)
    _expect(FileNotFoundError, ["root"], load_clipart, root=tmp_path / "openclipart")


@pytest.mark.parametrize("kw,name", [({"size": 0}, "size"), ({"size": 2.5}, "size"),
                                     ({"names": ["nope"]}, "names")])
def test_load_photos_bad_arguments(kw, name):
    from cl_teach.data import load_photos
    _expect((ValueError, TypeError), [name], load_photos, **kw)


@pytest.mark.parametrize("scores,k,name", [(np.random.rand(5), 2, "scores"), (np.random.rand(2, 5), 6, "k"),
                                           (np.random.rand(2, 5), 0, "k"), (np.random.rand(2, 5), 2.0, "k")])
def test_hashtag_top_k_bad_input(scores, k, name):
    from cl_teach.apps import hashtags
    _expect((ValueError, TypeError), [name], hashtags.top_k, scores, k)


@pytest.mark.parametrize("kw,name", [({"kind": "bpe"}, "kind"), ({"text": None}, "text")])
def test_tokenize_bad_input(kw, name):
    from cl_teach.data.text import tokenize
    _expect((ValueError, TypeError), [name], tokenize, **{"text": "abc", **kw})


@pytest.mark.parametrize("make,name", [
    (lambda: methods.SimCLR(None), "encoder"),
    (lambda: methods.BarlowTwins(models.SmallCNN(), lambd=-1), "lambd"),
    (lambda: methods.MoCo(models.SmallCNN(), queue_size=-1), "queue_size"),
])
def test_method_bad_hyper_parameters(make, name):
    _expect((ValueError, TypeError), [name], make)


@pytest.mark.parametrize("momentum", [1.5, -0.1, float("nan")])
def test_ema_momentum_out_of_range(momentum):
    from cl_teach.methods import ema_update
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    _expect(ValueError, ["momentum"], ema_update, a, b, momentum)
