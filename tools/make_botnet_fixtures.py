#!/usr/bin/env python3
"""Reference fixtures for BoTNet (Srinivas et al. 2021, arXiv 2101.11605) from timm.

Builds timm's `botnet26t` layout (tiered stem + max pool, four stages of two blocks: bottlenecks,
then bottleneck / self-attention interleaved, then two self-attention blocks, the first strided;
BatchNorm + ReLU; global average pool + linear head) shrunk so that the fixture stays small, with
random weights and random BatchNorm statistics (timm zero-initialises the last BatchNorm of every
block, which would hide most gradients), and writes in OUT (default tests/data/botnet):

  config.json          timm hub fields (architecture, num_classes, pretrained_cfg.input_size) and
                       the shrunk layout under "byob" (what perceiver.cpp reads to build the model)
  model.safetensors    the state_dict under timm names (running stats; num_batches_tracked int64)
  inputs.safetensors   pixel_values (2, 3, H, W), labels (2,)
  outputs.safetensors  eval mode: stem, stages.0 .. stages.3 outputs, pooled features, logits
                       (every reference computed in float64 from the float32 weights, stored float32)
  grads.safetensors    train mode: loss (cross entropy, mean), every parameter's gradient, and
                       the BatchNorm running statistics after that forward (prefix "after.")

Needs timm (and its torchvision import) in a PyPI venv; not a product dependency:
  python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch timm
  /tmp/tv/bin/python tools/make_botnet_fixtures.py [OUT]
"""
import json
import sys
from pathlib import Path

import torch
import timm
from safetensors.torch import save_file
from timm.models.byobnet import ByoBlockCfg, ByoModelCfg, ByobNet, interleave_blocks

STEM_CHS = 16
CHANNELS = (16, 32, 64, 128)
DEPTHS = (2, 2, 2, 2)
IMG = (64, 96)  # H, W: not square, so that height and width relative logits differ
NUM_CLASSES = 5
SEED = 0


def make_cfg():
    c0, c1, c2, c3 = CHANNELS
    d0, d1, d2, d3 = DEPTHS
    return ByoModelCfg(
        blocks=(
            ByoBlockCfg(type='bottle', d=d0, c=c0, s=1, gs=0, br=0.25),
            ByoBlockCfg(type='bottle', d=d1, c=c1, s=2, gs=0, br=0.25),
            interleave_blocks(types=('bottle', 'self_attn'), d=d2, c=c2, s=2, gs=0, br=0.25),
            ByoBlockCfg(type='self_attn', d=d3, c=c3, s=2, gs=0, br=0.25),
        ),
        stem_chs=STEM_CHS,
        stem_type='tiered',
        stem_pool='maxpool',
        fixed_input_size=True,
        self_attn_layer='bottleneck',
        self_attn_kwargs=dict(),
    )


def randomize(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('bn.weight') or name.endswith('post_attn.weight'):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith('bias'):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 4:  # conv (out, in, kh, kw): fan-in scaled
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            elif name.endswith('_rel'):
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            else:  # head.fc.weight
                p.copy_(torch.randn(p.shape, generator=gen) * p.shape[1] ** -0.5)
        for name, b in model.named_buffers():
            if name.endswith('running_mean'):
                b.copy_(0.1 * torch.randn(b.shape, generator=gen))
            elif name.endswith('running_var'):
                b.copy_(0.5 + torch.rand(b.shape, generator=gen))
            elif name.endswith('num_batches_tracked'):
                b.fill_(3)


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / 'tests' / 'data' / 'botnet'
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    model = ByobNet(make_cfg(), num_classes=NUM_CLASSES, img_size=IMG)
    randomize(model, gen)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / 'model.safetensors'), metadata={'format': 'pt'})

    x = torch.randn((2, 3) + IMG, generator=gen)
    labels = torch.tensor([1, 3], dtype=torch.int64)
    save_file({'pixel_values': x, 'labels': labels}, str(out / 'inputs.safetensors'))

    # The references are computed in float64 (the float32 weights and inputs widened exactly) and
    # stored in float32, so that a port's error against them is its own rounding only (timm in
    # float32 is itself 0.17 / 0.45 of the forward / gradient tolerance away from float64 here).
    model = model.double()
    x64 = x.double()

    # eval mode: running statistics
    model.eval()
    outs = {}
    with torch.no_grad():
        h = model.stem(x64)
        outs['stem'] = h.clone()
        for i, stage in enumerate(model.stages):
            h = stage(h)
            outs[f'stages.{i}'] = h.clone()
        h = model.final_conv(h)
        outs['pooled'] = model.forward_head(h, pre_logits=True).clone()
        outs['logits'] = model.forward_head(h).clone()
        full = model(x64)
    assert torch.allclose(full, outs['logits'])
    save_file({k: v.float().contiguous() for k, v in outs.items()}, str(out / 'outputs.safetensors'))

    # train mode: batch statistics, running statistics updated
    model.train()
    loss = torch.nn.functional.cross_entropy(model(x64), labels)
    loss.backward()
    grads = {'loss': loss.detach().reshape(())}
    for name, p in model.named_parameters():
        grads[name] = p.grad.detach().clone()
    for name, b in model.named_buffers():
        grads['after.' + name] = b.detach().clone()
    save_file({k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in grads.items()},
              str(out / 'grads.safetensors'))

    config = {
        'architecture': 'botnet26t_256',
        'num_classes': NUM_CLASSES,
        'num_features': CHANNELS[-1],
        'pretrained_cfg': {'input_size': [3, IMG[0], IMG[1]], 'fixed_input_size': True,
                           'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225]},
        'byob': {'stem_chs': STEM_CHS, 'channels': list(CHANNELS), 'depths': list(DEPTHS),
                 'bottleneck_ratio': 0.25, 'num_heads': 4},
        'fixture': {'timm': timm.__version__, 'torch': torch.__version__, 'seed': SEED, 'batch_size': 2,
                    'reference_precision': 'float64, stored as float32',
                    'loss': 'cross_entropy(logits, labels), mean over the batch',
                    'num_parameters': sum(p.numel() for p in model.parameters())},
    }
    (out / 'config.json').write_text(json.dumps(config, indent=2) + '\n')
    print(f'wrote {out}: {config["fixture"]["num_parameters"]} parameters, loss {loss.item():.6f}')


if __name__ == '__main__':
    main()
