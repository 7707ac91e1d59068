"""The latent domain: stems on the decoded latents y^ of icm streams (README.md), for the
classifier (the crop's 14x14 grid) and the detector (the letterbox's 26x26 grid).

- inputs: coding with the icm binary and y^ sampled at the classifier's crop cells or on
  the detector's letterbox grid (as crates/icm-eval/src/task/latent*.rs);
- stem: the classifier stem (stems.blocks.ConvStem on 192 channels) and the detector stem;
- build_cache, train, export_latent_stem (classification) and build_det_cache, train_det,
  export_det_stem (detection): the commands (`python -m icm_training.latent.<command>`).
"""
