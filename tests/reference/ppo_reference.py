#!/usr/bin/env python3
"""Independent reference for Hone's PPO pieces (core/train/policy_loss.cpp).

Written from the papers, in plain PyTorch with explicit loops where Hone vectorises: per-token
rewards with a KL penalty and the score on the last token (Ziegler et al. 2019, "Fine-Tuning
Language Models from Human Preferences"), GAE (Schulman et al. 2016, eq. 16), whitening of the
advantages over all real tokens, and the clipped policy and value objectives (Schulman et al. 2017,
eq. 7 and the value clipping of the PPO2 baseline). Prints JSON: the inputs, every intermediate,
the mean loss pg + vf_coef * vf over real tokens, and its gradient with respect to the policy
log-probs and values. tests/core/test_rlhf.cpp feeds the same inputs to the C++ functions.
Run with /usr/bin/python3 (Debian's python3-torch).
"""
# SPDX-License-Identifier: GPL-3.0-or-later
import json

import torch

torch.set_default_dtype(torch.float64)

gamma, lam, kl_coef, eps, vclip, vf_coef = 0.9, 0.8, 0.1, 0.2, 0.2, 0.1
mask = [[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]]
scores = [1.0, -0.5, 2.0]
old = [[-1.0, -0.6, -2.0, 0.0], [-0.9, -1.0, 0.0, 0.0], [-0.5, -0.4, -0.5, -1.7]]
ref = [[-1.1, -0.4, -1.8, 0.0], [-0.8, -1.3, 0.0, 0.0], [-0.3, -0.2, -1.0, -1.5]]
old_values = [[0.2, 0.4, 0.7, 0.0], [-0.1, 0.3, 0.0, 0.0], [0.5, 0.9, 1.2, 1.6]]
# The current policy and value head, moved away from the old ones (some ratios and values clip).
logps = torch.tensor([[-1.2, -0.3, -2.0, 0.0], [-0.7, -1.1, 0.0, 0.0], [-0.2, -0.4, -0.9, -1.6]], requires_grad=True)
values = torch.tensor([[0.3, 0.1, 0.8, 0.0], [0.2, 0.3, 0.0, 0.0], [0.4, 1.3, 1.1, 1.5]], requires_grad=True)

N, C = len(mask), len(mask[0])
lengths = [sum(m) for m in mask]

# Per-token rewards: -kl_coef * (old - ref), and the score on the last real token.
rewards = [[0.0] * C for _ in range(N)]
for i in range(N):
    for t in range(lengths[i]):
        rewards[i][t] = -kl_coef * (old[i][t] - ref[i][t])
    rewards[i][lengths[i] - 1] += scores[i]

# GAE, row by row, token by token from the end; the value after the last token is 0.
adv = [[0.0] * C for _ in range(N)]
ret = [[0.0] * C for _ in range(N)]
for i in range(N):
    running = 0.0
    for t in reversed(range(lengths[i])):
        next_v = old_values[i][t + 1] if t + 1 < lengths[i] else 0.0
        delta = rewards[i][t] + gamma * next_v - old_values[i][t]
        running = delta + gamma * lam * running
        adv[i][t] = running
        ret[i][t] = running + old_values[i][t]

# Whitening over the real tokens (unbiased variance, mean not added back).
real = [adv[i][t] for i in range(N) for t in range(lengths[i])]
mean = sum(real) / len(real)
var = sum((x - mean) ** 2 for x in real) / (len(real) - 1)
white = [[(adv[i][t] - mean) / (var + 1e-8) ** 0.5 if t < lengths[i] else 0.0 for t in range(C)] for i in range(N)]

m = torch.tensor(mask, dtype=torch.float64)
A = torch.tensor(white)
R = torch.tensor(ret)
ov = torch.tensor(old_values)
ratio = torch.exp(logps - torch.tensor(old))
pg = torch.maximum(-A * ratio, -A * torch.clamp(ratio, 1 - eps, 1 + eps))
v_clipped = ov + torch.clamp(values - ov, -vclip, vclip)
vf = 0.5 * torch.maximum((values - R) ** 2, (v_clipped - R) ** 2)
loss = ((pg * m).sum() + vf_coef * (vf * m).sum()) / m.sum()
loss.backward()
clipped = ((-A * torch.clamp(ratio, 1 - eps, 1 + eps)) > (-A * ratio)).double() * m

print(json.dumps({
    "gamma": gamma, "lambda": lam, "kl_coef": kl_coef, "eps": eps, "value_clip": vclip, "value_coef": vf_coef,
    "mask": mask, "scores": scores, "old": old, "ref": ref, "old_values": old_values,
    "logps": logps.detach().tolist(), "values": values.detach().tolist(),
    "rewards": rewards, "advantages": adv, "returns": ret, "whitened": white,
    "policy": (pg * m).detach().tolist(), "value": (vf * m).detach().tolist(), "clipped": clipped.tolist(),
    "loss": loss.item(), "grad_logps": logps.grad.tolist(), "grad_values": values.grad.tolist(),
}))
