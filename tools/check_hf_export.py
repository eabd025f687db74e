#!/usr/bin/env python3
"""Checks that a model folder exported by perceiver.cpp (a run's OUT/export/, or any folder
`perceiver run` reads) loads in Hugging Face transformers with `from_pretrained` and gives the same
logits as perceiver.cpp on the same inputs.

    perceiver run --logits-only --model OUT/export --inputs in.safetensors --outputs ours.safetensors
    python tools/check_hf_export.py OUT/export in.safetensors ours.safetensors

Needs torch, transformers and safetensors from PyPI, in a virtual environment (reference tooling;
perceiver.cpp never uses Python). Exits 1 when the folder does not load strictly (missing or
unexpected weights) or the logits differ by more than 1e-4 x max(1, |logits|).

PerceiverForTokenClassification (ours; transformers has no such class) is checked against the same
model assembled from transformers' own parts: PerceiverModel with PerceiverTextPreprocessor and
a PerceiverBasicDecoder as in PerceiverForMaskedLM, but with final_project=True to num_labels.
"""
import json
import sys

import torch
import transformers
from safetensors.torch import load_file


def token_classification_class():
    """PerceiverForTokenClassification from transformers' building blocks (see the module doc)."""
    from transformers.models.perceiver import modeling_perceiver as mp

    class PerceiverForTokenClassification(mp.PerceiverPreTrainedModel):
        def __init__(self, config):
            super().__init__(config)
            text = mp.PerceiverTextPreprocessor(config)
            self.perceiver = mp.PerceiverModel(
                config,
                input_preprocessor=text,
                decoder=mp.PerceiverBasicDecoder(
                    config,
                    output_num_channels=config.num_labels,
                    output_index_dims=config.max_position_embeddings,
                    num_channels=text.num_channels,
                    qk_channels=8 * 32,
                    v_channels=text.num_channels,
                    num_heads=8,
                    use_query_residual=False,
                    final_project=True,
                    trainable_position_encoding_kwargs=dict(
                        num_channels=text.num_channels, index_dims=config.max_position_embeddings),
                ),
            )
            self.post_init()

        def forward(self, inputs=None, attention_mask=None):
            return self.perceiver(inputs=inputs, attention_mask=attention_mask)

    return PerceiverForTokenClassification


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    folder, inputs_path, ours_path = sys.argv[1:]
    config = json.load(open(f"{folder}/config.json"))
    architecture = config["architectures"][0]
    cls = getattr(transformers, architecture, None)
    if architecture == "PerceiverForTokenClassification":
        cls = token_classification_class()
    if cls is None:
        sys.exit(f"check_hf_export: transformers {transformers.__version__} has no class {architecture}")
    model, info = cls.from_pretrained(folder, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        print(f"check_hf_export: {architecture} did not load strictly: {problems}")
        return 1
    model.eval()
    inputs = load_file(inputs_path)
    ours = load_file(ours_path)["logits"]
    with torch.no_grad():
        if architecture.startswith("ViT"):
            theirs = model(pixel_values=inputs["pixel_values"]).logits
        else:
            kwargs = {"inputs": inputs["inputs"]}
            if "attention_mask" in inputs:
                kwargs["attention_mask"] = inputs["attention_mask"]
            theirs = model(**kwargs).logits
    diff = (theirs - ours).abs().max().item()
    bound = 1e-4 * max(1.0, theirs.abs().max().item())
    print(f"check_hf_export: {architecture} from_pretrained({folder}) with transformers {transformers.__version__}: "
          f"logits {tuple(theirs.shape)}, max |transformers - perceiver.cpp| = {diff:.3g} (bound {bound:.3g})")
    return 0 if diff <= bound and theirs.shape == ours.shape else 1


if __name__ == "__main__":
    sys.exit(main())
