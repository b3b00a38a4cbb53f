"""Animate a target face from a driving clip, and the video I/O around it.

Modules: `animate` (Animator, animate: compiled batched generation), `video` (clips in, mp4/GIF out,
side-by-side and keypoint overlays), `target` (dlib crop of a target photo with the training crop rules),
`pipeline` (checkpoint loading, input preparation, all-or-nothing output folders), `megc` (the MEGC2021/2022
generation protocol).
"""
