"""LoRA training of a Llama checkpoint in NumPy float64, forward and backward written out by hand.

The independent reference of tests/python/test_finetune_golden.py: transformers' Llama forward pass (RMSNorm,
rotate-half RoPE with the checkpoint's inverse frequencies, grouped-query causal attention, SwiGLU) with PEFT's LoRA
branch y = x W^T + s (x A^T) B^T on every projection, the next-token cross-entropy summed over completion tokens,
and its gradient with respect to every A and B by the chain rule (no autograd). Plus torch.optim.AdamW's update,
clip_grad_norm_ and transformers' linear schedule, in NumPy.
"""
import math

import numpy as np

PROJECTIONS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
               "mlp.up_proj", "mlp.down_proj"]


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], -1)


def rms_forward(h, w, eps):
    r = 1.0 / np.sqrt((h * h).mean(-1, keepdims=True) + eps)
    return w * (h * r), r


def rms_backward(h, w, r, dy):
    g = w * dy  # d loss / d (h r)
    return r * g - h * r ** 3 * (g * h).mean(-1, keepdims=True)


class Linear:
    """y = x W^T + s (x A^T) B^T; backward returns dx and accumulates dA, dB."""

    def __init__(self, weight, a, b, scaling):
        self.w, self.a, self.b, self.s = weight, a, b, scaling

    def forward(self, x):
        xa = x @ self.a.T
        return x @ self.w.T + self.s * (xa @ self.b.T), xa

    def backward(self, x, xa, dy, grads):
        db = self.s * dy.T @ xa          # [out, r]
        dyb = dy @ self.b                # [T, r]
        da = self.s * dyb.T @ x          # [r, in]
        grads[0] += da
        grads[1] += db
        return dy @ self.w + self.s * dyb @ self.a


def loss_and_grads(cfg, weights, inv_freq, lora, scaling, examples):
    """Sum of the completion-token cross-entropy over `examples` ((ids, prompt_len) pairs, unpadded), the number
    of loss tokens, and d(sum)/dA, d(sum)/dB for every module in `lora` (module -> (A, B))."""
    H, K = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim") or cfg["hidden_size"] // H
    G, eps = H // K, cfg["rms_norm_eps"]
    head = weights["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else weights["lm_head.weight"]
    grads = {m: [np.zeros_like(a), np.zeros_like(b)] for m, (a, b) in lora.items()}
    lin = {m: Linear(weights[m + ".weight"], a, b, scaling) for m, (a, b) in lora.items()}
    total, n_tokens = 0.0, 0
    for ids, prompt_len in examples:
        T = len(ids)
        freqs = np.arange(T, dtype=np.float64)[:, None] * inv_freq[None, :]
        emb = np.concatenate([freqs, freqs], -1)
        cos, sin = np.cos(emb), np.sin(emb)
        causal = np.arange(T)[None, :] <= np.arange(T)[:, None]
        h = weights["model.embed_tokens.weight"][ids]
        tape = []
        for layer in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{layer}."
            t = {"h": h}
            x, t["r1"] = rms_forward(h, weights[p + "input_layernorm.weight"], eps)
            t["x"] = x
            q, t["xa_q"] = lin[p + "self_attn.q_proj"].forward(x)
            k, t["xa_k"] = lin[p + "self_attn.k_proj"].forward(x)
            v, t["xa_v"] = lin[p + "self_attn.v_proj"].forward(x)
            q = q.reshape(T, H, D).transpose(1, 0, 2)
            k = k.reshape(T, K, D).transpose(1, 0, 2)
            v = v.reshape(T, K, D).transpose(1, 0, 2)
            qr, kr = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
            kr_rep, v_rep = np.repeat(kr, G, axis=0), np.repeat(v, G, axis=0)
            s = np.where(causal[None], qr @ kr_rep.transpose(0, 2, 1) / math.sqrt(D), -np.inf)
            prob = np.exp(s - s.max(-1, keepdims=True))
            prob /= prob.sum(-1, keepdims=True)
            a = (prob @ v_rep).transpose(1, 0, 2).reshape(T, H * D)
            t.update(qr=qr, kr_rep=kr_rep, v_rep=v_rep, prob=prob, a=a)
            o, t["xa_o"] = lin[p + "self_attn.o_proj"].forward(a)
            h1 = h + o
            y, t["r2"] = rms_forward(h1, weights[p + "post_attention_layernorm.weight"], eps)
            g, t["xa_g"] = lin[p + "mlp.gate_proj"].forward(y)
            u, t["xa_u"] = lin[p + "mlp.up_proj"].forward(y)
            sig = 1.0 / (1.0 + np.exp(-g))
            m = g * sig * u
            d, t["xa_d"] = lin[p + "mlp.down_proj"].forward(m)
            t.update(h1=h1, y=y, g=g, u=u, sig=sig, m=m)
            tape.append(t)
            h = h1 + d
        hf, rf = rms_forward(h, weights["model.norm.weight"], eps)
        logits = hf @ head.T
        # Position i predicts token i + 1; completion tokens are ids[prompt_len:] (never the first token).
        pos = np.arange(max(prompt_len, 1) - 1, T - 1)
        target = np.asarray(ids)[pos + 1]
        z = logits[pos]
        zmax = z.max(-1, keepdims=True)
        logp = z - zmax - np.log(np.exp(z - zmax).sum(-1, keepdims=True))
        total += -logp[np.arange(len(pos)), target].sum()
        n_tokens += len(pos)
        dlogits = np.zeros_like(logits)
        dlogits[pos] = np.exp(logp)
        dlogits[pos, target] -= 1.0
        dh = rms_backward(h, weights["model.norm.weight"], rf, dlogits @ head)
        for layer in reversed(range(cfg["num_hidden_layers"])):
            p, t = f"model.layers.{layer}.", tape[layer]
            # MLP: h2 = h1 + down(silu(gate(y)) * up(y))
            dm = lin[p + "mlp.down_proj"].backward(t["m"], t["xa_d"], dh, grads[p + "mlp.down_proj"])
            g, sig, u = t["g"], t["sig"], t["u"]
            dg = dm * u * sig * (1 + g * (1 - sig))
            du = dm * g * sig
            dy = lin[p + "mlp.gate_proj"].backward(t["y"], t["xa_g"], dg, grads[p + "mlp.gate_proj"])
            dy += lin[p + "mlp.up_proj"].backward(t["y"], t["xa_u"], du, grads[p + "mlp.up_proj"])
            dh1 = dh + rms_backward(t["h1"], weights[p + "post_attention_layernorm.weight"], t["r2"], dy)
            # Attention: h1 = h + o_proj(softmax(q k^T / sqrt(D)) v)
            da = lin[p + "self_attn.o_proj"].backward(t["a"], t["xa_o"], dh1, grads[p + "self_attn.o_proj"])
            da = da.reshape(T, H, D).transpose(1, 0, 2)
            prob = t["prob"]
            dprob = da @ t["v_rep"].transpose(0, 2, 1)
            dv_rep = prob.transpose(0, 2, 1) @ da
            ds = prob * (dprob - (dprob * prob).sum(-1, keepdims=True)) / math.sqrt(D)
            dqr = ds @ t["kr_rep"]
            dkr_rep = ds.transpose(0, 2, 1) @ t["qr"]
            dkr = dkr_rep.reshape(K, G, T, D).sum(1)
            dv = dv_rep.reshape(K, G, T, D).sum(1)
            dq = dqr * cos - rotate_half(dqr * sin)  # rotate_half^T = -rotate_half
            dk = dkr * cos - rotate_half(dkr * sin)
            dx = lin[p + "self_attn.q_proj"].backward(t["x"], t["xa_q"], dq.transpose(1, 0, 2).reshape(T, H * D),
                                                      grads[p + "self_attn.q_proj"])
            dx += lin[p + "self_attn.k_proj"].backward(t["x"], t["xa_k"], dk.transpose(1, 0, 2).reshape(T, K * D),
                                                       grads[p + "self_attn.k_proj"])
            dx += lin[p + "self_attn.v_proj"].backward(t["x"], t["xa_v"], dv.transpose(1, 0, 2).reshape(T, K * D),
                                                       grads[p + "self_attn.v_proj"])
            dh = dh1 + rms_backward(t["h"], weights[p + "input_layernorm.weight"], t["r1"], dx)
    return total, n_tokens, grads


class AdamW:
    """torch.optim.AdamW's single-tensor update (decoupled weight decay, bias-corrected moments)."""

    def __init__(self, params, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.params, (self.b1, self.b2), self.eps, self.wd = params, betas, eps, weight_decay
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads, lr):
        self.t += 1
        bias1, bias2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            p *= 1 - lr * self.wd
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            p -= (lr / bias1) * m / (np.sqrt(v) / math.sqrt(bias2) + self.eps)


def clip_grad_norm(grads, max_norm):
    """torch.nn.utils.clip_grad_norm_: one global L2 norm, every gradient scaled by min(1, max/(norm + 1e-6))."""
    norm = math.sqrt(sum(float((g * g).sum()) for g in grads))
    coef = min(1.0, max_norm / (norm + 1e-6))
    for g in grads:
        g *= coef
    return norm
