"""Facial prior: dlib landmarks (`landmarks`), the 18 AU keypoints (`au_keypoints`), region masks (`region_mask`).

Submodules are imported explicitly (`from me_fomm.prior import au_keypoints`); `landmarks` loads dlib lazily.
"""
