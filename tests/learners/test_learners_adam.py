"""BatchedAdam = one torch.optim.Adam per agent, with masks that leave other agents untouched."""

from __future__ import annotations

import pytest
import torch

from learners.adam import _HAS_FUSED, BatchedAdam, clip_per_agent_

IMPLS = ["reference"] + (["fused"] if _HAS_FUSED else [])


def make(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    params = [torch.randn(n, 3, 5, generator=g, dtype=torch.float64), torch.randn(n, 5, generator=g, dtype=torch.float64)]
    return params, g


@pytest.mark.parametrize("impl", IMPLS)
def test_matches_per_agent_torch_adam_with_masks(impl):
    n = 4
    params, g = make(n)
    opt = BatchedAdam(params, lr=0.05, betas=(0.8, 0.99), eps=1e-6, impl=impl)
    ref_params = [[torch.nn.Parameter(p[i].clone()) for p in params] for i in range(n)]
    ref_opts = [torch.optim.Adam(ps, lr=0.05, betas=(0.8, 0.99), eps=1e-6) for ps in ref_params]
    masks = [None, [0, 2], [1], None, [0, 1, 3], None]
    for step, agents in enumerate(masks):
        ids = list(range(n)) if agents is None else agents
        grads = [torch.randn(len(ids), *p.shape[1:], generator=g, dtype=torch.float64) for p in params]
        before = [p.clone() for p in params]
        opt.step(grads, None if agents is None else torch.tensor(agents))
        for k, i in enumerate(ids):
            for rp, gr in zip(ref_params[i], grads):
                rp.grad = gr[k].clone()
            ref_opts[i].step()
        for i in range(n):
            for p, rp, b in zip(params, ref_params[i], before):
                torch.testing.assert_close(p[i], rp.detach(), rtol=1e-12, atol=1e-12)
                if i not in ids:
                    assert torch.equal(p[i], b[i])
    assert opt.steps.tolist() == [5.0, 5.0, 4.0, 4.0]


@pytest.mark.parametrize("impl", IMPLS)
def test_non_contiguous_gradients(impl):
    params, g = make(2)
    opt = BatchedAdam(params[:1], lr=0.1, impl=impl)
    ref = torch.nn.Parameter(params[0].clone())
    ref_opt = torch.optim.Adam([ref], lr=0.1)
    grad = torch.randn(2, 5, 3, generator=g, dtype=torch.float64).transpose(1, 2)  # strided
    assert not grad.is_contiguous()
    opt.step([grad])
    ref.grad = grad.contiguous()
    ref_opt.step()
    torch.testing.assert_close(params[0], ref.detach(), rtol=1e-12, atol=1e-12)


def test_fused_and_reference_agree():
    if not _HAS_FUSED:
        pytest.skip("no fused Adam in this torch")
    a, g = make(3, seed=1)
    b = [p.clone() for p in a]
    oa, ob = BatchedAdam(a, 0.01, impl="fused"), BatchedAdam(b, 0.01, impl="reference")
    for agents in (None, torch.tensor([1, 2]), None):
        n = 3 if agents is None else 2
        grads = [torch.randn(n, *p.shape[1:], generator=g, dtype=torch.float64) for p in a]
        oa.step(grads, agents)
        ob.step([x.clone() for x in grads], agents)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


def test_per_agent_clipping_matches_clip_grad_norm():
    g = torch.Generator().manual_seed(3)
    grads = [torch.randn(3, 4, 2, generator=g) * torch.tensor([1.0, 10.0, 0.01]).view(3, 1, 1), torch.randn(3, 2, generator=g)]
    per_agent = [[gr[i].clone() for gr in grads] for i in range(3)]
    norms = clip_per_agent_(grads, 0.5)
    for i in range(3):
        params = [torch.nn.Parameter(torch.zeros_like(x)) for x in per_agent[i]]
        for p, x in zip(params, per_agent[i]):
            p.grad = x
        total = torch.nn.utils.clip_grad_norm_(params, 0.5)
        assert float(norms[i]) == pytest.approx(float(total), rel=1e-6)
        for p, gr in zip(params, grads):
            torch.testing.assert_close(gr[i], p.grad)
    # the small agent was not clipped, the big one was
    assert float(norms[2]) < 0.5 < float(norms[1])
