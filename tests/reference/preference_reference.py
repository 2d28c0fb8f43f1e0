#!/usr/bin/env python3
"""Independent reference for Hone's preference losses (core/train/preference_loss.cpp).

Written from the papers and TRL's documented formulas (hf-compat.md section 6), in plain PyTorch
with torch.nn.functional, and printed as JSON: the inputs and, per loss, the expected per-example
losses and rewards. tests/core/test_preference.cpp feeds the same inputs to the C++ functions.
Run with /usr/bin/python3 (Debian's python3-torch).
"""
# SPDX-License-Identifier: GPL-3.0-or-later
import json
import sys

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

# Sequence log-probs of four pairs: policy and reference, chosen and rejected.
pi_c = torch.tensor([-12.5, -30.25, -7.0, -18.0])
pi_r = torch.tensor([-14.0, -29.0, -9.5, -18.0])
ref_c = torch.tensor([-13.0, -31.0, -6.5, -17.75])
ref_r = torch.tensor([-13.5, -30.0, -9.0, -19.0])
lengths_c = torch.tensor([5.0, 12.0, 3.0, 8.0])
lengths_r = torch.tensor([6.0, 11.0, 4.0, 8.0])
beta = 0.1
eps = 0.1


def dpo(loss_type, pc, pr, rc, rr, smoothing):
    chosen_ratio = pc - rc
    rejected_ratio = pr - rr
    logits = chosen_ratio - rejected_ratio
    if loss_type == "sigmoid":
        # DPO paper eq. 7; conservative DPO (label smoothing) mixes in the flipped preference.
        losses = -F.logsigmoid(beta * logits) * (1 - smoothing) - F.logsigmoid(-beta * logits) * smoothing
    elif loss_type == "robust":
        # Chowdhury et al. 2024: unbiased under label noise of rate smoothing.
        losses = (-F.logsigmoid(beta * logits) * (1 - smoothing) + F.logsigmoid(-beta * logits) * smoothing) / (1 - 2 * smoothing)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * logits)
    elif loss_type == "ipo":
        # Azar et al. 2023 eq. 17, tau = beta.
        losses = (logits - 1 / (2 * beta)) ** 2
    return losses, beta * chosen_ratio, beta * rejected_ratio


out = {"inputs": {"pi_c": pi_c.tolist(), "pi_r": pi_r.tolist(), "ref_c": ref_c.tolist(), "ref_r": ref_r.tolist(),
                  "lengths_c": lengths_c.tolist(), "lengths_r": lengths_r.tolist(), "beta": beta, "label_smoothing": eps},
       "dpo": {}}
for lt in ["sigmoid", "robust", "hinge", "ipo"]:
    if lt == "ipo":  # IPO on length-averaged log-probs, as TRL does it
        l, c, r = dpo(lt, pi_c / lengths_c, pi_r / lengths_r, ref_c / lengths_c, ref_r / lengths_r, 0.0)
    else:
        l, c, r = dpo(lt, pi_c, pi_r, ref_c, ref_r, eps if lt in ("sigmoid", "robust") else 0.0)
    out["dpo"][lt] = {"losses": l.tolist(), "chosen_rewards": c.tolist(), "rejected_rewards": r.tolist()}

# ORPO (Hong et al. 2024, eq. 4-7) on length-averaged log-probs.
avg_c = pi_c / lengths_c
avg_r = pi_r / lengths_r
odds_c = torch.exp(avg_c) / (1 - torch.exp(avg_c))
odds_r = torch.exp(avg_r) / (1 - torch.exp(avg_r))
log_odds = torch.log(odds_c / odds_r)
ratio = torch.log(torch.sigmoid(log_odds))
out["orpo"] = {"losses": (-beta * ratio).tolist(), "ratio": ratio.tolist(), "log_odds": log_odds.tolist()}

# KTO (Ethayarajh et al. 2024): z = max(0, mean KL estimate), detached.
pi = torch.tensor([-10.0, -22.0, -8.5, -15.0, -30.0])
ref = torch.tensor([-11.0, -20.0, -8.0, -16.5, -28.0])
desirable = [True, False, True, False, True]
pi_kl = torch.tensor([-40.0, -35.5, -50.0, -42.0, -38.0])
ref_kl = torch.tensor([-41.0, -35.0, -51.5, -41.0, -39.0])
wd, wu = 1.0, 1.5
z = torch.clamp((pi_kl - ref_kl).mean(), min=0)
r = pi - ref
losses = []
for i in range(len(desirable)):
    if desirable[i]:
        losses.append(wd * (1 - torch.sigmoid(beta * (r[i] - z))))
    else:
        losses.append(wu * (1 - torch.sigmoid(beta * (z - r[i]))))
out["kto"] = {"inputs": {"pi": pi.tolist(), "ref": ref.tolist(), "desirable": desirable, "pi_kl": pi_kl.tolist(),
                         "ref_kl": ref_kl.tolist(), "desirable_weight": wd, "undesirable_weight": wu},
              "losses": torch.stack(losses).tolist(), "kl": float(z), "rewards": (beta * r).tolist()}

json.dump(out, sys.stdout)
