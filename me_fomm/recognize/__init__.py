"""Micro-expression recognition: STSTNet on TV-L1 flow features, MEGC2019's LOSO protocol and scores.

* `features`: onset -> apex TV-L1 flow, optical strain, 28x28 (STSTNet's input);
* `ststnet`: the network (Flax); `fit`: every fold's network trained in one compiled program;
* `metrics`: UF1 / UAR as MEGC2019 defines them; `samples`: clips -> features with their subjects;
* `protocol`: leave-one-subject-out folds (with generated clips, leak-free); `augmentation`: which clip
  drives which face, and the staging folder of `me-fomm augment`; `report`: table, JSON, pictures.

Imports `me_fomm.data` only (no model, generation or evaluation): `me_fomm.evaluate.recognition`
scores generated clips with it, `me-fomm recognize` and `me-fomm augment` run it.
"""
