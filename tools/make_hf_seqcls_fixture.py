#!/usr/bin/env python3
"""Writes tests/data/hf/sequence-classification/: a shrunk, randomly initialised Hugging Face
PerceiverForSequenceClassification with reference inputs, forward tensors, the training loss,
every parameter gradient and the losses after 1-3 plain SGD steps (lr 0.01), in the layout of the
other HF fixtures (tests/data/hf/README.md). Reference tooling only (PyPI torch + transformers):

    python tools/make_hf_seqcls_fixture.py tests/data/hf/sequence-classification
"""
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/hf/sequence-classification"
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1013)
    config = transformers.PerceiverConfig(
        num_latents=16, d_latents=48, d_model=32, num_blocks=1, num_self_attends_per_block=2,
        num_self_attention_heads=4, num_cross_attention_heads=2, qk_channels=32, v_channels=48,
        max_position_embeddings=64, vocab_size=262, attention_probs_dropout_prob=0.0, num_labels=3)
    model = transformers.PerceiverForSequenceClassification(config)
    # larger-than-default random weights so that every path carries signal
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.eval()
    b, m = 2, 40
    ids = torch.randint(6, 262, (b, m))
    ids[:, 0] = 4                      # [CLS]
    mask = torch.ones(b, m, dtype=torch.int64)
    ids[1, 30:] = 0                    # padding at the end of the second sequence
    mask[1, 30:] = 0
    labels = torch.tensor([2, 0])
    inputs = {"inputs": ids, "attention_mask": mask, "labels": labels}

    captured = {}
    hook = model.perceiver.input_preprocessor.register_forward_hook(
        lambda mod, args, result: captured.__setitem__("encoder_input", result[0].detach().clone()))
    with torch.no_grad():
        logits = model(inputs=ids, attention_mask=mask).logits
        latents = model.perceiver(inputs=ids, attention_mask=mask).last_hidden_state
    hook.remove()
    outputs = {"encoder_input": captured["encoder_input"], "latents_final": latents, "logits": logits}

    model.train()
    params = dict(model.named_parameters())

    def loss_and_grads():
        model.zero_grad()
        loss = model(inputs=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        return loss

    loss0 = loss_and_grads()
    grads = {"loss": loss0.detach().clone()}
    for name, p in params.items():
        grads[name] = (p.grad if p.grad is not None else torch.zeros_like(p)).detach().clone()
    names = ["loss_after_1_sgd_step", "loss_after_2_sgd_steps", "loss_after_3_sgd_steps"]
    for key in names:
        with torch.no_grad():
            for p in params.values():
                if p.grad is not None:
                    p.sub_(0.01 * p.grad)
        grads[key] = loss_and_grads().detach().clone()

    # the weights before the SGD steps: reload them from the state saved first
    torch.manual_seed(1013)
    model2 = transformers.PerceiverForSequenceClassification(config)
    with torch.no_grad():
        for p in model2.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_file({k: v.contiguous() for k, v in model2.state_dict().items()}, f"{out}/model.safetensors",
              metadata={"format": "pt"})
    save_file({k: v.contiguous() for k, v in inputs.items()}, f"{out}/inputs.safetensors")
    save_file({k: v.contiguous() for k, v in outputs.items()}, f"{out}/outputs.safetensors")
    save_file({k: v.contiguous() for k, v in grads.items()}, f"{out}/grads.safetensors")
    cfg = config.to_dict()
    meta = {"checkpoint_architecture": None, "model_class": "PerceiverForSequenceClassification", "seed": 1013,
            "batch_size": b, "transformers": transformers.__version__, "torch": torch.__version__,
            "num_parameters": sum(p.numel() for p in model2.parameters()),
            "config": {k: v for k, v in cfg.items() if k in {
                "num_latents", "d_latents", "d_model", "num_blocks", "num_self_attends_per_block",
                "num_self_attention_heads", "num_cross_attention_heads", "qk_channels", "v_channels",
                "cross_attention_shape_for_attention", "self_attention_widening_factor",
                "cross_attention_widening_factor", "hidden_act", "attention_probs_dropout_prob",
                "use_query_residual", "vocab_size", "max_position_embeddings"}}}
    meta["config"]["num_labels"] = config.num_labels
    with open(f"{out}/config.json", "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    print(f"wrote {out}: loss {loss0.item():.6f}, logits {tuple(logits.shape)}")


if __name__ == "__main__":
    main()
