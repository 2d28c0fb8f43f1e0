#!/usr/bin/env python3
"""Independent reference for Hone's policy-gradient objectives (core/train/policy_loss.cpp).

Written from the GRPO paper (Shao et al. 2024, DeepSeekMath, eq. 3 with the k3 KL estimator of
Schulman's "Approximating KL divergence") and TRL's GRPOTrainer documentation, in plain PyTorch,
printed as JSON: the inputs, the per-sequence losses, the per-token KL, and the gradient of the
mean loss with respect to the policy log-probs. tests/core/test_rlhf.cpp feeds the same inputs to
the C++ functions. Run with /usr/bin/python3 (Debian's python3-torch).
"""
# SPDX-License-Identifier: GPL-3.0-or-later
import json

import torch

torch.set_default_dtype(torch.float64)

G = 3
rewards = torch.tensor([1.0, 0.0, 0.5, 2.0, 2.0, 2.0])  # two groups; the second has no spread
# Per-token log-probs of 6 completions of up to 4 tokens (mask marks the real ones).
mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.float64)
logps = torch.tensor([[-1.2, -0.3, -2.0, 0.0], [-0.7, -1.1, 0.0, 0.0], [-0.2, -0.4, -0.9, -1.6],
                      [-2.2, 0.0, 0.0, 0.0], [-0.5, -0.6, -0.7, 0.0], [-1.0, -0.1, 0.0, 0.0]], requires_grad=True)
# Sampling-time log-probs differ from the current ones, so that some ratios leave [1-eps, 1+eps].
old = torch.tensor([[-1.0, -0.6, -2.0, 0.0], [-0.9, -1.0, 0.0, 0.0], [-0.5, -0.4, -0.5, -1.7],
                    [-2.0, 0.0, 0.0, 0.0], [-0.5, -0.9, -0.7, 0.0], [-1.3, -0.1, 0.0, 0.0]])
ref = torch.tensor([[-1.1, -0.4, -1.8, 0.0], [-0.8, -1.3, 0.0, 0.0], [-0.3, -0.2, -1.0, -1.5],
                    [-2.4, 0.0, 0.0, 0.0], [-0.6, -0.5, -0.8, 0.0], [-0.9, -0.2, 0.0, 0.0]])
beta, eps = 0.04, 0.2

grouped = rewards.view(-1, G)
adv = ((grouped - grouped.mean(dim=1, keepdim=True)) / (grouped.std(dim=1, keepdim=True) + 1e-4)).view(-1)

ratio = torch.exp(logps - old)
surrogate = torch.minimum(ratio * adv[:, None], torch.clamp(ratio, 1 - eps, 1 + eps) * adv[:, None])
kl = (torch.exp(ref - logps) - (ref - logps) - 1) * mask
per_token = -surrogate + beta * kl
per_seq = (per_token * mask).sum(dim=1) / mask.sum(dim=1)
loss = per_seq.mean()
loss.backward()

print(json.dumps({
    "G": G, "beta": beta, "eps": eps,
    "rewards": rewards.tolist(), "mask": mask.tolist(), "logps": logps.detach().tolist(),
    "old": old.tolist(), "ref": ref.tolist(),
    "advantages": adv.tolist(), "per_sequence": per_seq.detach().tolist(), "kl": kl.detach().tolist(),
    "grad": logps.grad.tolist(),
}))
