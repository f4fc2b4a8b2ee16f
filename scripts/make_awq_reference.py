#!/usr/bin/env python3
"""Writes tests/data/awq/reference.bin: AWQ's scale search and clip search on
one Linear, computed by a transcription of mit-han-lab/llm-awq's own code
(commit d6e797a4, awq/quantize/quantizer.py pseudo_quantize_tensor,
auto_scale.py get_act_scale + _search_module_scale, auto_clip.py
auto_clip_layer + apply_clip), so test_awq.cpp can check embeval's C++
(runners/quant/awq.cpp) against the reference algorithm rather than against
itself.

One deliberate difference, the same in both: scales are rounded to fp16
when found (the checkpoints AutoAWQ writes hold fp16 scales, and llm-awq
runs fp16 models, so its scales are fp16 numbers too).

Run with /usr/bin/python3 (Debian python3-torch 1.13); deterministic (seed 0).
"""
import os
import sys

import torch

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data", "awq")
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)

N_BIT, GROUP, N_GRID, MAX_SHRINK, N_SAMPLE_TOKEN = 4, 32, 20, 0.5, 512


def pseudo_quantize_tensor(w, n_bit=N_BIT, q_group_size=GROUP):
    # llm-awq quantizer.py, zero_point=True branch.
    org_w_shape = w.shape
    if q_group_size > 0:
        assert org_w_shape[-1] % q_group_size == 0
        w = w.reshape(-1, q_group_size)
    assert w.dim() == 2
    max_val = w.amax(dim=1, keepdim=True)
    min_val = w.amin(dim=1, keepdim=True)
    max_int = 2**n_bit - 1
    min_int = 0
    scales = (max_val - min_val).clamp(min=1e-5) / max_int
    scales = scales.half().float()  # fp16 scales (see the docstring)
    zeros = (-torch.round(min_val / scales)).clamp_(min_int, max_int)
    w = (torch.clamp(torch.round(w / scales) + zeros, min_int, max_int) - zeros) * scales
    return w.reshape(org_w_shape)


def get_act_scale(x):
    return x.abs().view(-1, x.shape[-1]).mean(0)


def search_module_scale(fc, x):
    # auto_scale.py _search_module_scale with block = linears2scale = [fc].
    x = x.to(next(fc.parameters()).device)
    with torch.no_grad():
        org_out = fc(x)
    x_max = get_act_scale(x)
    best_error = float("inf")
    best_ratio = -1
    best_scales = None
    history = []
    org_sd = {k: v.cpu() for k, v in fc.state_dict().items()}
    for ratio in range(N_GRID):
        ratio = ratio * 1 / N_GRID
        scales = x_max.pow(ratio).clamp(min=1e-4).view(-1)
        scales = scales / (scales.max() * scales.min()).sqrt()
        fc.weight.mul_(scales.view(1, -1))
        fc.weight.data = pseudo_quantize_tensor(fc.weight.data) / (scales.view(1, -1))
        out = fc(x)
        loss = (org_out - out).float().pow(2).mean().item()
        history.append(loss)
        is_best = loss < best_error
        if is_best:
            best_error = loss
            best_ratio = ratio
            best_scales = scales
        fc.load_state_dict(org_sd)
    return best_scales.view(-1), best_ratio, torch.tensor(history)


def auto_clip_layer(w, input_feat, n_grid=N_GRID, max_shrink=MAX_SHRINK, n_sample_token=N_SAMPLE_TOKEN):
    # auto_clip.py auto_clip_layer; also returns every shrink's error (float32
    # copy) can tell a near tie from a wrong choice.
    assert w.dim() == 2
    group_size = GROUP if GROUP > 0 else w.shape[1]
    input_feat = input_feat.view(-1, input_feat.shape[-1])
    input_feat = input_feat.reshape(1, input_feat.shape[0], -1, group_size)
    input_feat = input_feat[:, 0::input_feat.shape[1] // n_sample_token]
    w = w.reshape(w.shape[0], 1, -1, group_size)
    oc_batch_size = 256 if w.shape[0] % 256 == 0 else 64
    assert w.shape[0] % oc_batch_size == 0
    w_all = w
    best_max_val_all = []
    errs_all = []
    for i_b in range(w.shape[0] // oc_batch_size):
        w = w_all[i_b * oc_batch_size:(i_b + 1) * oc_batch_size]
        org_max_val = w.abs().amax(dim=-1, keepdim=True)
        best_max_val = org_max_val.clone()
        min_errs = torch.ones_like(org_max_val) * 1e9
        org_out = (input_feat * w).sum(dim=-1)
        errs = []
        for i_s in range(int(max_shrink * n_grid)):
            max_val = org_max_val * (1 - i_s / n_grid)
            min_val = -max_val
            cur_w = torch.clamp(w, min_val, max_val)
            q_w = pseudo_quantize_tensor(cur_w)
            cur_out = (input_feat * q_w).sum(dim=-1)
            err = (cur_out - org_out).pow(2).mean(dim=1).view(min_errs.shape)
            errs.append(err.squeeze(-1).squeeze(1).clone())
            cur_best_idx = err < min_errs
            min_errs[cur_best_idx] = err[cur_best_idx]
            best_max_val[cur_best_idx] = max_val[cur_best_idx]
        best_max_val_all.append(best_max_val)
        errs_all.append(torch.stack(errs))
    return torch.cat(best_max_val_all, dim=0).squeeze(1), torch.cat(errs_all, dim=1)


def apply_clip(weight, max_val):
    org_shape = weight.shape
    weight = weight.reshape(*max_val.shape[:2], -1)
    weight = torch.clamp(weight, -max_val, max_val)
    return weight.reshape(org_shape)


OUT, IN, TOKENS = 64, 128, 600
# Inputs: correlated channels plus two outliers (5 and 77), as LLM and BERT activations show.
basis = torch.randn(16, IN)
x = torch.randn(TOKENS, 16) @ basis * 0.3 + torch.randn(TOKENS, IN) * 0.5
x[:, 5] *= 20
x[:, 77] *= 12
fc = torch.nn.Linear(IN, OUT)
with torch.no_grad():
    fc.weight.copy_(torch.randn(OUT, IN) * 0.05)
    fc.bias.copy_(torch.randn(OUT) * 0.1)
weight, bias = fc.weight.detach().clone(), fc.bias.detach().clone()

with torch.no_grad():
    scales, ratio, losses = search_module_scale(fc, x)
    scaled_w = weight * scales.view(1, -1)
    max_val, clip_errs = auto_clip_layer(scaled_w, x / scales.view(1, -1))
    clipped = apply_clip(scaled_w, max_val)

tensors = {
    "x": x.contiguous(), "weight": weight.contiguous(), "bias": bias.contiguous(),
    "ratio": torch.tensor([ratio]), "scales": scales.contiguous(), "losses": losses.float(),
    "clipped_weight": clipped.contiguous(), "clip_max": max_val.squeeze(-1).contiguous(),
    "clip_errors": clip_errs.contiguous(),  # [shrink step, out, group]; float64 is not read by the loaders
}
torch.save(tensors, os.path.join(out, "reference.bin"))
print(f"ratio {ratio}, losses {losses.tolist()}")
print(f"clip: {(max_val.squeeze(-1) < scaled_w.reshape(OUT, -1, GROUP).abs().amax(-1)).float().mean():.3f} of the groups shrunk")
