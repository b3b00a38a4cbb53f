"""UF1 and UAR (MEGC2019) against values computed by hand from small confusion matrices."""

import numpy as np
import pytest

from me_fomm.recognize import metrics as M


def test_uf1_uar_by_hand():
  # rows = true class, columns = predicted.
  cm = np.array([[3, 1, 0], [1, 2, 1], [0, 0, 2]])
  # negative: TP 3, FP 1, FN 1 -> F1 6/8, recall 3/4; positive: TP 2, FP 1, FN 2 -> F1 4/7,
  # recall 2/4; surprise: TP 2, FP 1, FN 0 -> F1 4/5, recall 2/2.
  assert M.uf1(cm) == pytest.approx((6 / 8 + 4 / 7 + 4 / 5) / 3)
  assert M.uar(cm) == pytest.approx((3 / 4 + 2 / 4 + 1) / 3)
  per = M.per_class(cm)
  np.testing.assert_allclose(per["f1"], [0.75, 4 / 7, 0.8])
  np.testing.assert_array_equal(per["support"], [4, 4, 2])


def test_perfect_and_constant_predictions():
  assert M.uf1(np.diag([5, 3, 2])) == M.uar(np.diag([5, 3, 2])) == 1.0
  # Everything called 'positive' (what a recogniser does with a clip that never moves): recall 1
  # for one class, 0 for the others; F1 of that class 2*3 / (2*3 + 6).
  cm = M.confusion([0, 0, 0, 1, 1, 1, 2, 2, 2], [1] * 9)
  assert M.uar(cm) == pytest.approx(1 / 3)
  assert M.uf1(cm) == pytest.approx((6 / 12) / 3)


def test_a_class_without_clips_is_left_out():
  # No 'positive' clip: its F1 and recall are 0/0; the mean runs over the two classes present.
  cm = np.array([[2, 0, 1], [0, 0, 0], [1, 0, 3]])
  assert M.uf1(cm) == pytest.approx((4 / 6 + 6 / 8) / 2)
  assert M.uar(cm) == pytest.approx((2 / 3 + 3 / 4) / 2)
  # Predicting the absent class still costs: those are false negatives of the true class.
  cm = np.array([[1, 1, 0], [0, 0, 0], [0, 0, 2]])
  assert M.uf1(cm) == pytest.approx((2 / 3 + 1) / 2)
  assert M.uar(cm) == pytest.approx((1 / 2 + 1) / 2)


def test_confusion_and_grouped_scores():
  labels = [0, 1, 2, 0, 1, 2]
  preds = [0, 1, 1, 0, 2, 2]
  cm = M.confusion(labels, preds)
  assert cm.tolist() == [[2, 0, 0], [0, 1, 1], [0, 1, 1]]
  out = M.grouped_scores(labels, preds, ["smic", "smic", "smic", "samm", "samm", "samm"])
  assert set(out) == {"overall", "smic", "samm"}
  assert out["overall"]["confusion"] == cm.tolist() and out["overall"]["clips"] == 6
  # Per corpus: the pooled predictions of that corpus' clips, scored the same way.
  assert out["smic"]["uar"] == pytest.approx(M.uar(M.confusion([0, 1, 2], [0, 1, 1])))
  assert out["samm"]["accuracy"] == pytest.approx(2 / 3)
  with pytest.raises(ValueError, match="class indices"):
    M.confusion([0, 3], [0, 0])
