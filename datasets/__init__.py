"""TFDS builders for the micro-expression corpora (installed as `me_fomm_datasets`)."""
