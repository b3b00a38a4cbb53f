"""Scoring generated clips: frame metrics, motion fidelity, the protocols, the HTML report.

Modules: `metrics` (L1, LPIPS, AKD, MKR, AED with dlib), `motion` (AU keypoint trajectory fidelity),
`protocols` (reconstruction and cross-identity, each beside the copy-the-target baseline), `runner` (a corpus
split and a checkpoint -> scored protocols), `report` (metrics.json + report.html).
"""
