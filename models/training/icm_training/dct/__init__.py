"""The DCT domain: classifier stems on the JPEG DCT coefficients (spec Annex B, README.md).

- inputs: JPEG coding and the Annex B frequency channels of a JPEG;
- stem: the stem (stems.blocks.ConvStem on C channels) and its channel gate;
- build_cache, train, export_stem, check_teacher: the commands
  (`python -m icm_training.dct.<command>`).
"""
