"""Plain PyTorch Perceiver models for the end-to-end comparison with perceiver.cpp (bench/torch_compare.py).

Three architectures, each with exactly the parameter names that perceiver.cpp uses (= Hugging Face
`state_dict` names), so a checkpoint written by `bench_e2e --save-init` loads with
`load_state_dict(strict=True)`:

* ``ClassifierPerceiver``: the Perceiver classifier of this repository (run config ``"model": {"type":
  "perceiver", ...}``, src/models/perceiver.cpp): inputs = [pixels, Fourier features of the grid] per
  position, learned latents, a cross-attend followed by ``num_blocks`` x ``self_attends_per_block``
  self-attention layers (optionally several cross-attends, all after the first sharing weights), then
  the "average" head (mean over latents, LayerNorm, Linear) or the "query" head (HF classification
  decoder).
* ``HFImageClassifierFourier``: HF ``PerceiverForImageClassificationFourier`` (pixels + 2-D Fourier
  features, 64 bands, max_resolution 224; classification decoder).
* ``HFMaskedLM``: HF ``PerceiverForMaskedLM`` (byte embeddings + learned positions; basic decoder with
  max_position_embeddings trainable queries, 8 heads, qk 256, no final layer; tied embedding decoder).
* ``ViTClassifier``: the ViT of this repository (run config ``"model": {"type": "vit", ...}``,
  src/models/vit, Hugging Face ``ViTForImageClassification`` names), which is transformers' own
  ``ViTForImageClassification`` here (imported when a ViT is built; the only use of transformers).
* ``BotNetTimm``: the BoTNet of this repository (run config ``"model": {"type": "botnet", ...}``,
  src/models/botnet), which is timm's own ``ByobNet`` in the botnet26t layout here (timm names; the
  only use of timm). Its FLOPs are counted by torch.utils.flop_counter (convolutions included).

Every attention is ``torch.nn.functional.scaled_dot_product_attention``; everything is float32.
The architecture is described by small "spec" objects (``make_spec``) that also count the matmul FLOPs
analytically and make benchmark inputs, so the harness never has to build a model just to count.

This file needs torch (numpy for input generation); `transformers` only for the ViT, `timm` only for
BoTNet.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


# ----------------------------------------------------------------------------------------------
# Position encodings (HF build_linear_positions + generate_fourier_features, same float32 ops)
# ----------------------------------------------------------------------------------------------

def build_linear_positions(index_dims) -> torch.Tensor:
    """(prod(index_dims), d): linspace(-1, 1) per axis, 'ij' meshgrid, flattened row-major."""
    ranges = [torch.linspace(-1.0, 1.0, steps=int(n), dtype=torch.float32) for n in index_dims]
    grid = torch.stack(torch.meshgrid(*ranges, indexing="ij"), dim=-1)
    return grid.reshape(-1, len(index_dims))


def fourier_features(index_dims, num_bands, max_resolution, concat_pos=True, sine_only=False) -> torch.Tensor:
    """(prod(index_dims), width): [pos, sin(pi f pos) ..., cos(pi f pos) ...] as HF computes it."""
    pos = build_linear_positions(index_dims)
    freq_bands = torch.stack(
        [torch.linspace(start=1.0, end=r / 2, steps=int(num_bands), dtype=torch.float32) for r in max_resolution])
    per_pos = pos[:, :, None] * freq_bands[None, :, :]
    per_pos = per_pos.reshape(pos.shape[0], -1)
    if sine_only:
        feats = torch.sin(np.pi * per_pos)
    else:
        feats = torch.cat([torch.sin(np.pi * per_pos), torch.cos(np.pi * per_pos)], dim=-1)
    if concat_pos:
        feats = torch.cat([pos, feats], dim=-1)
    return feats.contiguous()


def fourier_width(d, num_bands, concat_pos=True, sine_only=False) -> int:
    return (d if concat_pos else 0) + d * num_bands * (1 if sine_only else 2)


# ----------------------------------------------------------------------------------------------
# PerceiverLayer (HF PerceiverLayer: attention with LayerNorms, query residual, MLP)
# ----------------------------------------------------------------------------------------------

@dataclass
class LayerDims:
    is_cross: bool
    q_dim: int
    kv_dim: int
    qk: int
    v: int
    out: int
    heads: int
    widening: int
    query_residual: bool

    def flops(self, batch: int, nq: int, nk: int) -> int:
        """Matmul FLOPs (2 m n k each) of one forward application: Q, K, V, QK^T, PV, out, MLP."""
        f = nq * self.q_dim * self.qk            # Q
        f += nk * self.kv_dim * self.qk          # K
        f += nk * self.kv_dim * self.v           # V
        f += nq * nk * self.qk                   # Q K^T (all heads)
        f += nq * nk * self.v                    # P V
        f += nq * self.v * self.out              # attention.output.dense
        f += 2 * nq * self.out * self.widening * self.out  # mlp.dense1 + dense2
        return 2 * batch * f


def resolve_layer(is_cross, q_dim, kv_dim=None, qk=None, v=None, heads=1, widening=1, query_residual=True,
                  shape_for_attention="kv") -> LayerDims:
    """HF PerceiverAttention channel rules (spec section 3)."""
    qk = qk or None
    v = v or None
    if not is_cross:
        kv_dim = q_dim
    if is_cross and qk is None:
        qk = kv_dim if shape_for_attention == "kv" else q_dim
    elif qk is None:
        qk = q_dim
    if v is None:
        v = qk
    out = q_dim if is_cross else v
    if qk % heads or v % heads:
        raise ValueError(f"qk ({qk}) and v ({v}) must be divisible by heads ({heads})")
    if not is_cross and v != q_dim:
        raise ValueError(f"self-attention needs v == q_dim for the residual, got v={v} q_dim={q_dim}")
    return LayerDims(is_cross, q_dim, kv_dim, qk, v, out, heads, widening, query_residual)


class _Node(nn.Module):
    """An empty module used only to build HF-style parameter name prefixes."""


class PerceiverLayer(nn.Module):
    def __init__(self, d: LayerDims, eps: float = 1e-5):
        super().__init__()
        self.d = d
        self.attention = _Node()
        s = _Node()
        s.layernorm1 = nn.LayerNorm(d.q_dim, eps=eps)
        if d.is_cross:
            s.layernorm2 = nn.LayerNorm(d.kv_dim, eps=eps)
        s.query = nn.Linear(d.q_dim, d.qk)
        s.key = nn.Linear(d.kv_dim, d.qk)
        s.value = nn.Linear(d.kv_dim, d.v)
        self.attention.add_module("self", s)
        self.attention.output = _Node()
        self.attention.output.dense = nn.Linear(d.v, d.out)
        self.layernorm = nn.LayerNorm(d.out, eps=eps)
        self.mlp = _Node()
        self.mlp.dense1 = nn.Linear(d.out, d.widening * d.out)
        self.mlp.dense2 = nn.Linear(d.widening * d.out, d.out)

    def forward(self, x, y=None, mask=None):
        """x (B, Nq, q_dim); y (B, Nk, kv_dim) for cross layers; mask broadcastable to (B, h, Nq, Nk),
        additive float or boolean (True = attend), or None."""
        d = self.d
        s = getattr(self.attention, "self")
        xn = s.layernorm1(x)
        yn = s.layernorm2(y) if d.is_cross else xn
        b, nq, _ = x.shape
        nk = yn.shape[1]
        h = d.heads
        q = s.query(xn).view(b, nq, h, d.qk // h).transpose(1, 2)
        k = s.key(yn).view(b, nk, h, d.qk // h).transpose(1, 2)
        v = s.value(yn).view(b, nk, h, d.v // h).transpose(1, 2)
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # scale 1/sqrt(qk/h)
        ctx = ctx.transpose(1, 2).reshape(b, nq, d.v)
        a = self.attention.output.dense(ctx)
        if d.query_residual:
            a = a + x
        m = self.mlp.dense2(F.gelu(self.mlp.dense1(self.layernorm(a))))
        return a + m


def _latents_param(owner: nn.Module, n: int, d: int):
    owner.embeddings = _Node()
    owner.embeddings.latents = nn.Parameter(torch.randn(n, d) * 0.02)


# ----------------------------------------------------------------------------------------------
# Specs: configuration -> architecture, FLOPs, inputs, model
# ----------------------------------------------------------------------------------------------

# Defaults of perceiver.cpp's PerceiverConfig (include/perceiver/models/perceiver_config.h).
CLASSIFIER_DEFAULTS = dict(
    image_size=[28, 28], in_channels=1, num_fourier_bands=8, max_resolution=None, concat_pos=True,
    sine_only=False, num_latents=64, d_latents=128, qk_channels=0, v_channels=0, cross_attention_heads=1,
    self_attention_heads=4, cross_attention_widening_factor=1, self_attention_widening_factor=2,
    use_query_residual=True, cross_attention_shape_for_attention="kv", num_cross_attends=1,
    self_attends_per_block=2, num_blocks=1, share_weights=True, head="average", head_layernorm=True,
    decoder_heads=1, num_classes=10, dropout=0.0, init="lecun", init_std=0.02, type="perceiver")

# Run-config defaults of our ViT (src/models/vit/vit_config.cpp).
VIT_DEFAULTS = dict(
    type="vit", image_size=[224, 224], patch_size=[16, 16], in_channels=3, hidden_size=768, num_hidden_layers=12,
    num_attention_heads=12, intermediate_size=3072, layer_norm_eps=1e-12, qkv_bias=True, pooling="cls",
    num_classes=1000, dropout=0.0, init="normal", init_std=0.02)

BOTNET_DEFAULTS = dict(
    type="botnet", image_size=[256, 256], in_channels=3, num_classes=1000, stem_chs=64,
    channels=[256, 512, 1024, 2048], depths=[2, 2, 2, 2], bottleneck_ratio=0.25, num_heads=4)

# Defaults of HF PerceiverConfig (configuration_perceiver.py).
HF_DEFAULTS = dict(
    num_latents=256, d_latents=1280, d_model=768, num_blocks=1, num_self_attends_per_block=26,
    num_self_attention_heads=8, num_cross_attention_heads=8, qk_channels=None, v_channels=None,
    cross_attention_shape_for_attention="kv", self_attention_widening_factor=1,
    cross_attention_widening_factor=1, hidden_act="gelu", attention_probs_dropout_prob=0.1,
    use_query_residual=True, vocab_size=262, max_position_embeddings=2048, image_size=56, num_labels=2)


@dataclass
class Spec:
    kind: str                      # "classifier" | "hf_fourier" | "hf_mlm" | "vit" | "botnet"
    cfg: dict = field(default_factory=dict)

    # -- architecture -------------------------------------------------------------------------
    def num_classes(self) -> int:
        if self.kind in ("classifier", "vit", "botnet"):
            return int(self.cfg["num_classes"])
        if self.kind == "hf_fourier":
            return int(self.cfg["num_labels"])
        return int(self.cfg["vocab_size"])

    def build_model(self) -> nn.Module:
        if self.kind == "classifier":
            return ClassifierPerceiver(self.cfg)
        if self.kind == "hf_fourier":
            return HFImageClassifierFourier(self.cfg)
        if self.kind == "hf_mlm":
            return HFMaskedLM(self.cfg)
        if self.kind == "vit":
            return ViTClassifier(self.cfg)
        if self.kind == "botnet":
            return BotNetTimm(self.cfg)
        raise ValueError(self.kind)

    def input_tokens_and_width(self, sample_shape):
        """(M, C) of the encoder input for one sample of the given input shape (without batch)."""
        c = self.cfg
        if self.kind == "botnet":  # pixels x channels
            return int(np.prod(c["image_size"])), int(c["in_channels"])
        if self.kind == "vit":  # patches x (channels * patch pixels)
            return vit_patches(c), int(c["in_channels"]) * int(np.prod(c["patch_size"]))
        if self.kind == "classifier":
            m = int(np.prod(c["image_size"]))
            return m, int(c["in_channels"]) + fourier_width(len(c["image_size"]), c["num_fourier_bands"],
                                                            c["concat_pos"], c["sine_only"])
        if self.kind == "hf_fourier":
            _, h, w = sample_shape
            return h * w, 3 + fourier_width(2, 64)
        return int(sample_shape[0]), int(c["d_model"])

    def forward_flops(self, batch: int, sample_shape) -> int:
        """Analytic matmul FLOPs of one forward pass over a batch (2 m n k per GEMM, incl. QK^T and PV)."""
        m, width = self.input_tokens_and_width(sample_shape)
        total = 0
        if self.kind == "botnet":  # counted once on the meta device: convolutions, attention products, head
            if "_flops_per_sample" not in self.cfg:
                from torch.utils.flop_counter import FlopCounterMode
                with torch.device("meta"):
                    model = self.build_model().eval()  # batch 1: BatchNorm on running statistics
                    x = torch.zeros([1] + list(self.cfg["image_size"]))
                    with FlopCounterMode(display=False) as counter:
                        model(x)
                self.cfg["_flops_per_sample"] = int(counter.get_total_flops())
            return batch * self.cfg["_flops_per_sample"]
        if self.kind == "vit":
            c = self.cfg
            t, d, i = m + 1, c["hidden_size"], c["intermediate_size"]  # tokens: patches + [CLS]
            per_layer = 2 * t * d * 3 * d + 2 * 2 * t * t * d + 2 * t * d * d + 2 * 2 * t * d * i
            return batch * (2 * m * width * d + c["num_hidden_layers"] * per_layer + 2 * d * c["num_classes"])
        if self.kind == "classifier":
            c = self.cfg
            cross, selfl = classifier_layers(c)
            n = c["num_latents"]
            for _ in range(c["num_cross_attends"]):
                total += cross.flops(batch, n, m)
                total += c["num_blocks"] * c["self_attends_per_block"] * selfl.flops(batch, n, n)
            if c["head"] == "query":
                dec = resolve_layer(True, c["d_latents"], c["d_latents"], heads=c["decoder_heads"])
                total += dec.flops(batch, 1, n)
            total += 2 * batch * c["d_latents"] * c["num_classes"]
            return total
        c = self.cfg
        cross, selfl = hf_encoder_layers(c, width)
        n = c["num_latents"]
        total += cross.flops(batch, n, m)
        total += c["num_blocks"] * c["num_self_attends_per_block"] * selfl.flops(batch, n, n)
        if self.kind == "hf_fourier":
            dec = hf_classification_decoder_layer(c)
            total += dec.flops(batch, 1, n)
            total += 2 * batch * c["d_latents"] * c["num_labels"]
        else:
            dec = hf_mlm_decoder_layer(c)
            l_out = c["max_position_embeddings"]
            total += dec.flops(batch, l_out, n)
            total += 2 * batch * l_out * c["d_model"] * c["vocab_size"]  # tied embedding decoder
        return total

    def param_count(self) -> int:
        with torch.device("meta"):
            model = self.build_model()
        return sum(p.numel() for p in model.parameters())

    # -- inputs -------------------------------------------------------------------------------
    def make_inputs(self, batch: int, seed: int = 0, **kw) -> dict:
        """numpy arrays, named as bench_e2e / `perceiver run` expect."""
        rng = np.random.default_rng(seed)
        c = self.cfg
        if self.kind in ("classifier", "vit", "botnet"):
            shape = [batch] + list(c["image_size"]) + ([c["in_channels"]] if c["in_channels"] > 1 else [])
            return {"images": rng.random(shape, dtype=np.float32),
                    "labels": rng.integers(0, c["num_classes"], size=(batch,), dtype=np.int64)}
        if self.kind == "hf_fourier":
            h, w = kw.get("image_hw", (224, 224))
            return {"inputs": rng.standard_normal((batch, 3, h, w), dtype=np.float32),
                    "labels": rng.integers(0, c["num_labels"], size=(batch,), dtype=np.int64)}
        # masked LM: byte ids (6 .. vocab-1), [CLS] ... [SEP], padding after `fill` of the length,
        # ~15% of the real tokens replaced by [MASK] (id 3), labels -100 except there.
        length = kw.get("length", c["max_position_embeddings"])
        fill = kw.get("fill", 0.75)
        ids = rng.integers(6, c["vocab_size"], size=(batch, length), dtype=np.int64)
        mask = np.zeros((batch, length), dtype=np.int64)
        n_real = max(3, int(round(length * fill)))
        mask[:, :n_real] = 1
        ids[:, 0] = 4
        ids[:, n_real - 1] = 5
        ids[:, n_real:] = 0
        labels = np.full((batch, c["max_position_embeddings"]), -100, dtype=np.int64)
        pick = (rng.random((batch, length)) < 0.15)
        pick[:, 0] = False
        pick[:, n_real - 1:] = False
        pick[:, 1] = True  # at least one label per row
        labels[:, :length][pick] = ids[pick]
        ids[pick] = 3
        return {"inputs": ids, "attention_mask": mask, "labels": labels}

    def model_args(self, tensors: dict):
        """(args for model.forward, labels) from the tensors of an inputs file."""
        if self.kind in ("classifier", "vit", "botnet"):
            return (tensors["images"],), tensors.get("labels")
        if self.kind == "hf_fourier":
            return (tensors["inputs"],), tensors.get("labels")
        return (tensors["inputs"], tensors.get("attention_mask")), tensors.get("labels")

    def loss(self, logits, labels):
        if self.kind == "hf_mlm":
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1).long(),
                                   ignore_index=-100)
        return F.cross_entropy(logits, labels.long())


def make_spec(config: dict) -> Spec:
    """A Spec from a config.json object: an HF hub config (model_type perceiver + architectures)
    or one of our run configs ({"model": {"type": "perceiver", ...}})."""
    run_model = config.get("model") if isinstance(config.get("model"), dict) else None
    kind = None
    if run_model is not None:
        kind = run_model.get("type", "perceiver")
        defaults = {"botnet": BOTNET_DEFAULTS, "vit": VIT_DEFAULTS, "perceiver": CLASSIFIER_DEFAULTS}.get(kind)
        if defaults is None:
            raise ValueError(f"unsupported run-config model type {kind!r}")
        unknown = set(run_model) - set(defaults)
        if unknown:
            raise ValueError(f"unknown {kind} model keys {sorted(unknown)}")
        m = dict(defaults, **run_model)
        for key in ("image_size", "patch_size"):
            if kind != "perceiver" and isinstance(m.get(key), int):  # ViT / BoTNet: n means n x n
                m[key] = [m[key], m[key]]
    if kind == "botnet":
        if m["in_channels"] != 1:
            raise ValueError("the benchmark BoTNet takes grey images (in_channels 1)")
        return Spec("botnet", m)
    if kind == "vit":
        if m["dropout"] or m["pooling"] != "cls" or m["in_channels"] != 1:
            raise ValueError("the benchmark ViT takes grey images, no dropout and the [CLS] pooling")
        return Spec("vit", m)
    if run_model is not None:
        if m["max_resolution"] is None:
            m["max_resolution"] = list(m["image_size"])
        if m["dropout"]:
            raise ValueError("the benchmark models have no dropout (set model.dropout = 0)")
        return Spec("classifier", m)
    if "model_class" in config and isinstance(config.get("config"), dict):
        # test-fixture wrapper {"model_class": "PerceiverFor...", "config": {PerceiverConfig fields}}
        config = dict(config["config"], architectures=[config["model_class"]])
    arch = (config.get("architectures") or [None])[0]
    c = dict(HF_DEFAULTS)
    c.update({k: v for k, v in config.items() if k in HF_DEFAULTS})
    if "id2label" in config:
        c["num_labels"] = len(config["id2label"])
    if c["hidden_act"] != "gelu":
        raise ValueError("only hidden_act gelu is implemented")
    if arch == "PerceiverForImageClassificationFourier":
        return Spec("hf_fourier", c)
    if arch == "PerceiverForMaskedLM":
        return Spec("hf_mlm", c)
    raise ValueError(f"unsupported architecture {arch!r}")


def classifier_layers(c):
    width = int(c["in_channels"]) + fourier_width(len(c["image_size"]), c["num_fourier_bands"], c["concat_pos"],
                                                  c["sine_only"])
    cross = resolve_layer(True, c["d_latents"], width, c["qk_channels"], c["v_channels"], c["cross_attention_heads"],
                          c["cross_attention_widening_factor"], c["use_query_residual"],
                          c["cross_attention_shape_for_attention"])
    selfl = resolve_layer(False, c["d_latents"], None, c["qk_channels"], c["v_channels"], c["self_attention_heads"],
                          c["self_attention_widening_factor"], True)
    return cross, selfl


def hf_encoder_layers(c, kv_dim):
    cross = resolve_layer(True, c["d_latents"], kv_dim, c["qk_channels"], c["v_channels"],
                          c["num_cross_attention_heads"], c["cross_attention_widening_factor"],
                          c["use_query_residual"], c["cross_attention_shape_for_attention"])
    selfl = resolve_layer(False, c["d_latents"], None, c["qk_channels"], c["v_channels"],
                          c["num_self_attention_heads"], c["self_attention_widening_factor"], True)
    return cross, selfl


def hf_classification_decoder_layer(c):
    # PerceiverClassificationDecoder -> PerceiverBasicDecoder(num_channels = d_latents, 1 head, widening 1,
    # use_query_residual True); qk unset -> kv_dim (= d_latents) by the "kv" rule.
    return resolve_layer(True, c["d_latents"], c["d_latents"], None, None, 1, 1, True,
                         c["cross_attention_shape_for_attention"])


def hf_mlm_decoder_layer(c):
    # PerceiverForMaskedLM: basic decoder, num_channels = d_model, qk 8*32, v d_model, 8 heads, widening 1,
    # no query residual, no final layer.
    return resolve_layer(True, c["d_model"], c["d_latents"], 8 * 32, c["d_model"], 8, 1, False)


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------

class _PositionCache:
    """Fourier features per index-dims, computed once outside autograd (perceiver.cpp's classifier
    precomputes its grid in the constructor; HF recomputes it every call, which costs the same every
    iteration and is left out here). Kept off the state_dict."""

    def __init__(self, num_bands, max_resolution, concat_pos=True, sine_only=False):
        self.args = (num_bands, tuple(max_resolution), concat_pos, sine_only)
        self.cache = {}

    def get(self, index_dims, dtype=torch.float32):
        key = (tuple(int(d) for d in index_dims), dtype)
        t = self.cache.get(key)
        if t is None:
            with torch.no_grad(), torch.inference_mode(False):
                nb, mr, cp, so = self.args
                t = fourier_features(key[0], nb, mr, cp, so).to(dtype)
            self.cache[key] = t
        return t


def vit_patches(c) -> int:
    return (c["image_size"][0] // c["patch_size"][0]) * (c["image_size"][1] // c["patch_size"][1])


class ViTClassifier(nn.Module):
    """perceiver.cpp's ViT as transformers' ViTForImageClassification (the same names and numbers:
    tests/parity/vit_parity_test.cpp), on grey images (B, H, W)."""

    def __init__(self, cfg: dict):
        super().__init__()
        from transformers import ViTConfig, ViTForImageClassification
        self.cfg = c = cfg
        hf = ViTConfig(image_size=c["image_size"], patch_size=c["patch_size"], num_channels=c["in_channels"],
                       hidden_size=c["hidden_size"], num_hidden_layers=c["num_hidden_layers"],
                       num_attention_heads=c["num_attention_heads"], intermediate_size=c["intermediate_size"],
                       layer_norm_eps=c["layer_norm_eps"], qkv_bias=c["qkv_bias"], hidden_act="gelu",
                       hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=c["num_classes"])
        model = ViTForImageClassification(hf)
        self.vit, self.classifier = model.vit, model.classifier

    # Hub checkpoint names (ours) -> the module names of transformers releases that renamed ViT's
    # layers (5.x: vit.layers.N.attention.q_proj ...; from_pretrained maps them, load_state_dict not).
    _RENAMES = [(r"vit\.encoder\.layer\.(\d+)\.attention\.attention\.query\.", r"vit.layers.\1.attention.q_proj."),
                (r"vit\.encoder\.layer\.(\d+)\.attention\.attention\.key\.", r"vit.layers.\1.attention.k_proj."),
                (r"vit\.encoder\.layer\.(\d+)\.attention\.attention\.value\.", r"vit.layers.\1.attention.v_proj."),
                (r"vit\.encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"vit.layers.\1.attention.o_proj."),
                (r"vit\.encoder\.layer\.(\d+)\.intermediate\.dense\.", r"vit.layers.\1.mlp.fc1."),
                (r"vit\.encoder\.layer\.(\d+)\.output\.dense\.", r"vit.layers.\1.mlp.fc2."),
                (r"vit\.encoder\.layer\.(\d+)\.", r"vit.layers.\1.")]

    def load_state_dict(self, state, strict=True, assign=False):
        import re
        own = set(self.state_dict(keep_vars=True))
        mapped = {}
        for name, t in state.items():
            if name not in own:
                for pattern, repl in self._RENAMES:
                    new = re.sub("^" + pattern, repl, name)
                    if new != name:
                        name = new
                        break
            mapped[name] = t
        return super().load_state_dict(mapped, strict=strict, assign=assign)

    def prime(self, images):
        pass

    def forward(self, images):
        hidden = self.vit(pixel_values=images.unsqueeze(1)).last_hidden_state
        return self.classifier(hidden[:, 0, :])


class BotNetTimm(nn.Module):
    """perceiver.cpp's BoTNet as timm's ByobNet (botnet26t: tiered stem + max pool, bottleneck stages,
    then bottleneck / self-attention interleaved, then self-attention with the first block strided;
    the same names and numbers: tests/parity/botnet_parity_test.cpp), on grey images (B, H, W)."""

    def __init__(self, cfg: dict):
        super().__init__()
        from timm.models.byobnet import ByoBlockCfg, ByoModelCfg, ByobNet, interleave_blocks
        c = cfg
        (c0, c1, c2, c3), (d0, d1, d2, d3), br = c["channels"], c["depths"], c["bottleneck_ratio"]
        layout = ByoModelCfg(
            blocks=(ByoBlockCfg(type="bottle", d=d0, c=c0, s=1, gs=0, br=br),
                    ByoBlockCfg(type="bottle", d=d1, c=c1, s=2, gs=0, br=br),
                    interleave_blocks(types=("bottle", "self_attn"), d=d2, c=c2, s=2, gs=0, br=br),
                    ByoBlockCfg(type="self_attn", d=d3, c=c3, s=2, gs=0, br=br)),
            stem_chs=c["stem_chs"], stem_type="tiered", stem_pool="maxpool", fixed_input_size=True,
            self_attn_layer="bottleneck", self_attn_kwargs=dict(num_heads=c["num_heads"]))
        # timm sizes the relative position tables from img_size // reduction, perceiver.cpp (like the
        # convolutions themselves) from the maps' real sizes, ceil-halved at every stride; an image
        # size that is not a multiple of 32 (28 x 28) is given to timm as 16 x its stage-2 map, which
        # yields the same tables (the strided attention needs an even map, so stage 3's is half)
        def stage2_map(side):
            for _ in range(4):  # stem conv, max pool, stages 1 and 2
                side = (side + 1) // 2
            return side
        timm_size = tuple(16 * stage2_map(side) for side in c["image_size"])
        net = ByobNet(layout, num_classes=c["num_classes"], in_chans=c["in_channels"], img_size=timm_size)
        # our names are timm's: register timm's children directly (stem, stages, final_conv, head)
        for name, child in net.named_children():
            self.add_module(name, child)
        self._net = [net]  # not a submodule: its parameters are already registered above

    def prime(self, images):
        pass

    def forward(self, images):
        return self._net[0](images.unsqueeze(1))


class ClassifierPerceiver(nn.Module):
    """perceiver.cpp's Perceiver classifier (src/models/perceiver.cpp), parameter names included."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = c = cfg
        cross, selfl = classifier_layers(c)
        self.perceiver = _Node()
        _latents_param(self.perceiver, c["num_latents"], c["d_latents"])
        enc = self.perceiver.encoder = _Node()
        n_sets = min(c["num_cross_attends"], 2) if c["share_weights"] else c["num_cross_attends"]
        for s in range(n_sets):
            suffix = "" if s == 0 else f"_{s}"
            enc.add_module("cross_attention" + suffix, PerceiverLayer(cross))
            if c["self_attends_per_block"] > 0:
                enc.add_module("self_attends" + suffix,
                               nn.ModuleList(PerceiverLayer(selfl) for _ in range(c["self_attends_per_block"])))
        self.n_sets = n_sets
        dec = self.perceiver.decoder = _Node()
        if c["head"] == "query":
            dd = dec.decoder = _Node()
            dd.output_position_encodings = _Node()
            dd.output_position_encodings.position_embeddings = nn.Parameter(torch.randn(1, c["d_latents"]) * 0.02)
            dd.decoding_cross_attention = PerceiverLayer(
                resolve_layer(True, c["d_latents"], c["d_latents"], None, None, c["decoder_heads"], 1, True))
            dd.final_layer = nn.Linear(c["d_latents"], c["num_classes"])
        else:
            if c["head_layernorm"]:
                dec.layernorm = nn.LayerNorm(c["d_latents"], eps=1e-5)
            dec.final_layer = nn.Linear(c["d_latents"], c["num_classes"])
        self.pos = _PositionCache(c["num_fourier_bands"], c["max_resolution"], c["concat_pos"], c["sine_only"])

    def prime(self, images):
        """Fills the Fourier-feature cache (outside any timing or compilation)."""
        self.pos.get(self.cfg["image_size"], images.dtype)

    def forward(self, images):
        c = self.cfg
        b = images.shape[0]
        m = int(np.prod(c["image_size"]))
        pixels = images.reshape(b, m, c["in_channels"])
        pos = self.pos.get(c["image_size"], pixels.dtype)
        inputs = torch.cat([pixels, pos.expand(b, -1, -1)], dim=-1)
        enc = self.perceiver.encoder
        z = self.perceiver.embeddings.latents.expand(b, -1, -1)
        for i in range(c["num_cross_attends"]):
            s = min(i, 1) if c["share_weights"] else i
            suffix = "" if s == 0 else f"_{s}"
            z = getattr(enc, "cross_attention" + suffix)(z, inputs)
            if c["self_attends_per_block"] > 0:
                layers = getattr(enc, "self_attends" + suffix)
                for _ in range(c["num_blocks"]):
                    for layer in layers:
                        z = layer(z)
        dec = self.perceiver.decoder
        if c["head"] == "query":
            dd = dec.decoder
            q = dd.output_position_encodings.position_embeddings.expand(b, -1, -1)
            return dd.final_layer(dd.decoding_cross_attention(q, z))[:, 0, :]
        pooled = z.mean(dim=1)
        if c["head_layernorm"]:
            pooled = dec.layernorm(pooled)
        return dec.final_layer(pooled)


class HFImageClassifierFourier(nn.Module):
    """HF PerceiverForImageClassificationFourier: inputs (B, 3, H, W) -> logits (B, num_labels)."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = c = cfg
        width = 3 + fourier_width(2, 64)
        cross, selfl = hf_encoder_layers(c, width)
        self.perceiver = _Node()
        _latents_param(self.perceiver, c["num_latents"], c["d_latents"])
        enc = self.perceiver.encoder = _Node()
        enc.cross_attention = PerceiverLayer(cross)
        enc.self_attends = nn.ModuleList(PerceiverLayer(selfl) for _ in range(c["num_self_attends_per_block"]))
        self.perceiver.decoder = _Node()
        dd = self.perceiver.decoder.decoder = _Node()
        dd.output_position_encodings = _Node()
        dd.output_position_encodings.position_embeddings = nn.Parameter(torch.randn(1, c["d_latents"]) * 0.02)
        dd.decoding_cross_attention = PerceiverLayer(hf_classification_decoder_layer(c))
        dd.final_layer = nn.Linear(c["d_latents"], c["num_labels"])
        self.pos = _PositionCache(64, (224, 224), True, False)

    def prime(self, inputs):
        self.pos.get(tuple(inputs.shape[2:]), inputs.dtype)

    def forward(self, inputs):
        c = self.cfg
        b, ch, h, w = inputs.shape
        pixels = inputs.permute(0, 2, 3, 1).reshape(b, h * w, ch)  # "pixels" prep: NCHW -> NHWC, flatten
        pos = self.pos.get((h, w), inputs.dtype)
        x = torch.cat([pixels, pos.expand(b, -1, -1)], dim=-1)
        enc = self.perceiver.encoder
        z = self.perceiver.embeddings.latents.expand(b, -1, -1)
        z = enc.cross_attention(z, x)
        for _ in range(c["num_blocks"]):
            for layer in enc.self_attends:
                z = layer(z)
        dd = self.perceiver.decoder.decoder
        q = dd.output_position_encodings.position_embeddings.expand(b, -1, -1)
        return dd.final_layer(dd.decoding_cross_attention(q, z))[:, 0, :]


class HFMaskedLM(nn.Module):
    """HF PerceiverForMaskedLM: ids (B, L), attention_mask (B, L) -> logits (B, max_position_embeddings, vocab)."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = c = cfg
        d_model = c["d_model"]
        self.perceiver = _Node()
        pre = self.perceiver.input_preprocessor = _Node()
        pre.embeddings = nn.Embedding(c["vocab_size"], d_model)
        pre.position_embeddings = nn.Embedding(c["max_position_embeddings"], d_model)
        _latents_param(self.perceiver, c["num_latents"], c["d_latents"])
        cross, selfl = hf_encoder_layers(c, d_model)
        enc = self.perceiver.encoder = _Node()
        enc.cross_attention = PerceiverLayer(cross)
        enc.self_attends = nn.ModuleList(PerceiverLayer(selfl) for _ in range(c["num_self_attends_per_block"]))
        dec = self.perceiver.decoder = _Node()
        dec.output_position_encodings = _Node()
        dec.output_position_encodings.position_embeddings = nn.Parameter(
            torch.randn(c["max_position_embeddings"], d_model) * 0.02)
        dec.decoding_cross_attention = PerceiverLayer(hf_mlm_decoder_layer(c))
        self.embedding_decoder = _Node()
        self.embedding_decoder.bias = nn.Parameter(torch.zeros(c["vocab_size"]))

    def prime(self, ids, attention_mask=None):
        pass

    def forward(self, ids, attention_mask=None):
        c = self.cfg
        b, length = ids.shape
        pre = self.perceiver.input_preprocessor
        x = pre.embeddings(ids) + pre.position_embeddings.weight[:length]
        mask = None
        if attention_mask is not None:
            # HF: additive (1 - mask) * finfo.min on the encoder cross-attention keys only
            mask = ((1.0 - attention_mask.to(x.dtype)) * torch.finfo(x.dtype).min)[:, None, None, :]
        enc = self.perceiver.encoder
        z = self.perceiver.embeddings.latents.expand(b, -1, -1)
        z = enc.cross_attention(z, x, mask)
        for _ in range(c["num_blocks"]):
            for layer in enc.self_attends:
                z = layer(z)
        dec = self.perceiver.decoder
        q = dec.output_position_encodings.position_embeddings.expand(b, -1, -1)
        out = dec.decoding_cross_attention(q, z)                       # (B, max_pos, d_model)
        return torch.matmul(out, pre.embeddings.weight.t()) + self.embedding_decoder.bias
