"""The CPU paths (`me_fomm.model.conv`): the per-tap and patches kernel gradients and the pyramid's blur
as matrix products equal XLA's convolutions in value and gradients, and are traced on CPU only."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from me_fomm.model import conv, pyramid


def _plain(x, k, padding):
  return jax.lax.conv_general_dilated(
    x, k, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
  )


@pytest.mark.parametrize("form", ["per_tap", "patches"])
@pytest.mark.parametrize(
  "kernel,cin,cout,pad,size",
  [
    (3, 5, 7, 1, 12),
    (7, 3, 4, 3, 10),
    (7, 6, 2, 3, 9),
    (1, 6, 2, 0, 8),
    (3, 4, 3, 0, 9),
    (5, 2, 3, 2, 7),
    (3, 5, 2, 2, 6),
    (1, 6, 2, 1, 5),
  ],
)
def test_value_and_gradients_equal_jax_grad_of_the_plain_convolution(
  monkeypatch, form, kernel, cin, cout, pad, size
):
  assert conv.cpu_paths()  # the suite runs on CPU: this is the path under test
  # Small shapes, the same paths (Cin <= Cout and Cout < Cin take different patches).
  monkeypatch.setattr(conv, "kernel_grad_form", lambda *shapes: form)
  rng = np.random.default_rng(kernel * 10 + cin)
  x = jnp.asarray(rng.standard_normal((2, size, size + 1, cin)), jnp.float32)
  k = jnp.asarray(rng.standard_normal((kernel, kernel, cin, cout)), jnp.float32)
  padding = ((pad, pad), (pad, pad))
  # A loss that weights every output differently, so a wrong tap or transpose shows.
  w = jnp.asarray(rng.standard_normal(_plain(x, k, padding).shape), jnp.float32)
  loss = lambda f: lambda x, k: jnp.sum(w * jnp.tanh(f(x, k, padding)))
  np.testing.assert_allclose(
    conv.conv2d(x, k, padding), _plain(x, k, padding), rtol=1e-6, atol=1e-6
  )
  got = jax.jit(jax.grad(loss(conv.conv2d), argnums=(0, 1)))(x, k)
  want = jax.jit(jax.grad(loss(_plain), argnums=(0, 1)))(x, k)
  for g, e in zip(got, want):
    np.testing.assert_allclose(g, e, rtol=2e-5, atol=2e-5 * float(jnp.abs(e).max()))


def test_the_cpu_path_is_a_custom_gradient_on_cpu_and_xla_elsewhere(monkeypatch):
  x, k = jnp.ones((1, 64, 64, 64)), jnp.ones((3, 3, 64, 64))
  text = lambda: str(jax.make_jaxpr(lambda x, k: conv.conv2d(x, k, ((1, 1), (1, 1))))(x, k))
  assert "custom_vjp" in text()
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert "custom_vjp" not in text() and "conv_general_dilated" in text()
  monkeypatch.undo()
  monkeypatch.setenv("ME_FOMM_CPU_PATHS", "0")
  assert "custom_vjp" not in text()


def test_each_kernel_gradient_is_chosen_where_it_was_measured_faster():
  form = conv.kernel_grad_form
  assert form((3, 3, 64, 128)) == form((1, 1, 256, 64)) == "per_tap"
  assert form((3, 3, 64, 64), (2, 64, 64, 64)) == "per_tap"
  assert (
    form((7, 7, 64, 3), (2, 256, 256, 64)) == form((7, 7, 108, 1), (2, 64, 64, 108)) == "patches"
  )
  assert form((7, 7, 3, 64), (2, 256, 256, 3)) == form((3, 3, 8, 16), (2, 64, 64, 8)) == "xla"


@pytest.mark.parametrize("form", ["per_tap", "patches"])
def test_bfloat16_kernel_gradient_is_close_to_float32(monkeypatch, form):
  monkeypatch.setattr(conv, "kernel_grad_form", lambda *shapes: form)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((2, 8, 8, 4)), jnp.float32)
  k = jnp.asarray(rng.standard_normal((3, 3, 4, 5)), jnp.float32)
  pad = ((1, 1), (1, 1))

  def dk(dtype):
    f = lambda k: jnp.sum(conv.conv2d(x.astype(dtype), k.astype(dtype), pad).astype(jnp.float32))
    return jax.grad(f)(k)

  lo, hi = dk(jnp.bfloat16), dk(jnp.float32)
  assert lo.dtype == jnp.float32
  np.testing.assert_allclose(lo, hi, rtol=0.05, atol=0.05 * float(jnp.abs(hi).max()))


@pytest.mark.parametrize("scale,size", [(0.5, 16), (0.25, 20), (0.125, 32), (0.25, 13)])
def test_pyramid_blur_as_matrices_equals_the_strided_convolution(monkeypatch, scale, size):
  rng = np.random.default_rng(int(1 / scale))
  x = jnp.asarray(rng.random((2, size, size + 3, 3)), jnp.float32)
  w = jnp.asarray(rng.standard_normal(pyramid.antialias_downsample(x, scale).shape), jnp.float32)
  loss = lambda x: jnp.sum(w * pyramid.antialias_downsample(x, scale) ** 2)
  cpu_value, cpu_grad = pyramid.antialias_downsample(x, scale), jax.grad(loss)(x)
  monkeypatch.setenv("ME_FOMM_CPU_PATHS", "0")
  conv_value, conv_grad = pyramid.antialias_downsample(x, scale), jax.grad(loss)(x)
  assert cpu_value.shape == conv_value.shape
  np.testing.assert_allclose(cpu_value, conv_value, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(cpu_grad, conv_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cin,cout,h,w", [(3, 5, 16, 17), (8, 4, 16, 20), (64, 64, 16, 16)])
def test_upsampled_convolution_equals_upsample_then_convolve(cin, cout, h, w):
  assert h * w >= 256  # grids the sub-pixel form is traced for
  rng = np.random.default_rng(cin + h)
  x = jnp.asarray(rng.standard_normal((2, h, w, cin)), jnp.float32)
  k = jnp.asarray(rng.standard_normal((3, 3, cin, cout)), jnp.float32)
  pad = ((1, 1), (1, 1))
  plain = lambda x, k: _plain(conv.upsample_nearest2(x), k, pad)
  wgt = jnp.asarray(rng.standard_normal((2, 2 * h, 2 * w, cout)), jnp.float32)
  loss = lambda f: lambda x, k: jnp.sum(wgt * jnp.tanh(f(x, k)))
  want = plain(x, k)
  np.testing.assert_allclose(
    conv.upsample_conv2d(x, k, pad), want, rtol=1e-5, atol=1e-5 * float(jnp.abs(want).max())
  )
  got = jax.jit(jax.grad(loss(lambda x, k: conv.upsample_conv2d(x, k, pad)), argnums=(0, 1)))(x, k)
  exp = jax.jit(jax.grad(loss(plain), argnums=(0, 1)))(x, k)
  for g, e in zip(got, exp):
    np.testing.assert_allclose(g, e, rtol=2e-5, atol=2e-5 * float(jnp.abs(e).max()))


def test_the_polyphase_form_is_traced_on_cpu_only(monkeypatch):
  k = jnp.ones((3, 3, 4, 4))
  text = lambda x: str(
    jax.make_jaxpr(lambda x: conv.upsample_conv2d(x, k, ((1, 1), (1, 1))))(x)
  ).replace(" ", "")
  # 2x2 kernel, four phases, on the input's grid (1 + 16 rows and columns, 4 x 4 channels).
  assert "f32[1,17,17,16]" in text(jnp.ones((1, 16, 16, 4)))
  # The smallest grids keep the plain form (the kernel's transform costs more than it saves).
  small = text(jnp.ones((1, 8, 8, 4)))
  assert "f32[1,16,16,4]" in small and "f32[1,9,9" not in small
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  gpu = text(jnp.ones((1, 16, 16, 4)))
  assert "f32[1,32,32,4]" in gpu and "f32[1,17,17,16]" not in gpu  # upsample, XLA's conv
