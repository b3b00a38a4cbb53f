"""Experiment configs and launchers (installed as `me_fomm_experiments`)."""
