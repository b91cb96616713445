"""CLIP^-1: a frozen image encoder (CLIP, or any encoder) as a decoder (docs/methods.md section 4).

An image is the rendering of a small frequency-aware INR (``finer``); inversion optimises the
INR's weights, never pixels, so that the encoder's augmentation-averaged embedding of the
rendering matches a target embedding. The pieces, one file each:

* ``encoders``: open_clip, timm and RobustClassifier behind ``encode_image`` / ``encode_text``;
* ``finer``: the FINER network; ``schedule``: the layer-wise Gaussian learning-rate sweep;
* ``augment``: batched augmentations and the averaged embedding (4.6);
* ``awp``: robust anchors fitted under adversarial weight perturbation (4.4);
* ``bank``: anchors with their embeddings and captions, retrieval by cosine top-k (4.1);
* ``builtin_bank``: the bank shipped in the package (anchors of openly licensed photos), its
  keys computed with whichever encoder is loaded and cached per encoder;
* ``procrustes``: the per-prompt orthogonal map and the blending target (4.5, 4.6);
* ``engine``: ``InversionEngine``, the optimisation loop every task, benchmark and bank build
  runs (4.3, 4.6);
* ``inverter``: ``CLIPInverter``, the tasks (their targets, weights and starts), and its hub I/O.
* ``run_time``: how long a run takes (priors from the benchmarks, or the pace a run measured).
"""
