"""STSTNet (Liong, Gan, See, Khor and Huang 2019), the shallow triple-stream recogniser, in Flax.

Three parallel streams over the (28, 28, 3) flow features: a 3x3 convolution (same padding) with 3, 5
and 8 filters, ReLU, 3x3 max pooling with stride 3 (same padding: 28 -> 10); the 16 maps are
concatenated, 2x2 average pooled (10 -> 5) and a dense layer maps the 5 x 5 x 16 = 400 values to the
classes: 1,651 parameters for three classes. (The authors' later PyTorch release adds batch
normalisation and dropout to each stream; the paper's network, as here, has neither.)

How it is computed, not what: the three streams see the same input and ReLU and max pooling act per
channel, so they are one 16-filter convolution whose outputs are split 3/5/8. The convolution is a
matrix product with the input's 3x3 patches (`patches`), which the protocol extracts once per sample
and reuses for every fold and step (`classify`): on a CPU this trains ~3x faster than XLA's
convolution of a 3-channel input. Parameters are those of three convolutions, `stream_<i>_kernel`
(3, 3, 3, filters) HWIO and `stream_<i>_bias`, and of a `nn.Dense` (`classifier`).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

STREAMS = (3, 5, 8)
INPUT = (28, 28, 3)


def patches(x: jnp.ndarray) -> jnp.ndarray:
  """(B, H, W, C) -> (B, H, W, 9 C): each pixel's 3x3 neighbourhood (zero padded), in the order of
  a flattened (3, 3, C) convolution kernel."""
  h, w = x.shape[1:3]
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  return jnp.concatenate([xp[:, i : i + h, j : j + w] for i in range(3) for j in range(3)], -1)


def max_pool_3x3_s3_same(y: jnp.ndarray) -> jnp.ndarray:
  """3x3 max pooling, stride 3, same padding (28 -> 10: one padded row/column on each side)."""
  h, w = y.shape[1:3]
  out_h, out_w = -(-h // 3), -(-w // 3)
  pad_h, pad_w = out_h * 3 - h, out_w * 3 - w
  y = jnp.pad(
    y,
    ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)),
    constant_values=-jnp.inf,
  )
  out = None
  for i in range(3):  # nine strided views: the max's gradient is a select, cheap on a CPU
    for j in range(3):
      view = y[:, i::3, j::3]
      out = view if out is None else jnp.maximum(out, view)
  return out


class STSTNet(nn.Module):
  num_classes: int = 3
  streams: tuple = STREAMS

  def setup(self):
    conv_init, dense_init = nn.initializers.lecun_normal(), nn.initializers.lecun_normal()
    c = INPUT[-1]
    self.kernels = [
      self.param(f"stream_{i}_kernel", conv_init, (3, 3, c, f)) for i, f in enumerate(self.streams)
    ]
    self.biases = [
      self.param(f"stream_{i}_bias", nn.initializers.zeros, (f,))
      for i, f in enumerate(self.streams)
    ]
    self.classifier = nn.Dense(self.num_classes, kernel_init=dense_init)

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    """x (B, 28, 28, 3) float32 flow features -> logits (B, num_classes)."""
    return self.classify(patches(x))

  def classify(self, p: jnp.ndarray) -> jnp.ndarray:
    """The network on precomputed `patches(x)` (B, 28, 28, 27)."""
    kernel = jnp.concatenate([k.reshape(-1, k.shape[-1]) for k in self.kernels], axis=-1)
    y = nn.relu(p @ kernel + jnp.concatenate(self.biases))
    y = max_pool_3x3_s3_same(y)  # = each stream's pooling, then their concatenation
    b, h, w, c = y.shape
    y = y[:, : h // 2 * 2, : w // 2 * 2].reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
    return self.classifier(y.reshape(b, -1))
