"""Prototype for cl_teach/losses/clip.py: CLIP's symmetric InfoNCE with one (N, N) matrix.

Compares cl_teach.losses.clip_loss, this fused autograd.Function (the recipe of
losses._fused._NTXent), a variant with a second product for the text side, and the floor; prints
value/gradient differences and median ms, interleaved, one thread.

    CL_TEACH_THREADS=1 .venv/bin/python benchmarks/proto_clip_fused.py
"""
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
import _common as C
from torch.autograd.function import once_differentiable

from cl_teach.losses import clip_loss


class _Clip(torch.autograd.Function):
    """Symmetric InfoNCE on unit vectors, one (N, N) matrix kept (same recipe as losses._fused._NTXent)."""
    @staticmethod
    def forward(ctx, i, t, tau):
        s = (i / tau) @ t.T                                   # (N, N)
        diag = s.diagonal().clone()
        m = s.max()                                           # |s| <= 1/tau: one shift for rows and columns
        e = s.sub_(m).exp_()
        r, c = e.sum(1), e.sum(0)                             # (N,), (N,)
        loss = ((m + r.log() - diag).mean() + (m + c.log() - diag).mean()) / 2
        ctx.save_for_backward(i, t, e, r, c); ctx.tau = tau
        return loss
    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        i, t, e, r, c = ctx.saved_tensors
        n = i.shape[0]; k = g / (2 * n * ctx.tau)
        # dS = (E/r + E/c - 2I) / 2N ; di = dS t / tau ; dt = dS^T i / tau
        di = (e @ t).div_(r[:, None]).addmm_(e, t / c[:, None]).sub_(t, alpha=2).mul_(k)
        dt = (e.T @ i).div_(c[:, None]).addmm_(e.T, i / r[:, None]).sub_(i, alpha=2).mul_(k)
        return di, dt, None

def clip_fused(a, b, tau=0.07):
    return _Clip.apply(F.normalize(a, dim=1), F.normalize(b, dim=1), tau)

def clip_contig(a, b, tau=0.07):
    i, t = F.normalize(a, dim=1), F.normalize(b, dim=1)
    li = i @ t.T / tau; lab = torch.arange(a.shape[0])
    return (F.cross_entropy(li, lab) + F.cross_entropy(t @ i.T / tau, lab)) / 2

for n in (1024, 4096):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, 128, generator=g, requires_grad=True)
    b = (a.detach() + 0.5 * torch.randn(n, 128, generator=g)).requires_grad_()
    res = {}
    for name, f in [('ours', clip_loss), ('fused', clip_fused), ('two matmuls', clip_contig)]:
        a.grad = b.grad = None; loss = f(a, b, 0.07); loss.backward()
        res[name] = (loss.item(), a.grad.clone(), b.grad.clone())
    for k in ('fused', 'two matmuls'):
        print(n, k, 'dv', abs(res[k][0] - res['ours'][0]),
              'dg', max((res[k][1]-res['ours'][1]).abs().max().item(),
                        (res[k][2]-res['ours'][2]).abs().max().item()))
    def st(f):
        def r():
            a.grad = b.grad = None; f(a, b, 0.07).backward()
        return r
    def floor():
        with torch.no_grad():
            s = a @ b.T; s @ b; s.T @ a
    t = C.interleaved({'ours': st(clip_loss), 'fused': st(clip_fused), 'two matmuls': st(clip_contig),
                       'floor': floor}, reps=5 if n == 4096 else 10)
    print(n, {k: round(statistics.median(v['wall']) * 1e3, 1) for k, v in t.items()}, C.loadavg(), flush=True)
