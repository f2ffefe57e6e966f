"""The gradient checker itself: it passes correct rules and catches wrong first- and
second-order rules, naming the input and the worst element."""
import numpy as np  # host-side: test inputs
import pytest

import autodiff as ad
from autodiff.checks import GradcheckError, gradcheck
from autodiff.tensor import Function


def leaf(arr):
    return ad.tensor(np.asarray(arr, dtype=np.float64), requires_grad=True)


class WrongFirstOrder(Function):
    """x^3 with the derivative 2 x^2 (should be 3 x^2), wrong in element-dependent ways."""

    def forward(self, a):
        return a ** 3

    def backward(self, g):
        (a,) = self.inputs
        return g * (a * a * 2.0)


class WrongSecondOrder(Function):
    """x^3 whose derivative 3 x^2 is right in value but built from a detached x, so its own
    derivative (6 x) is lost: first order passes, second order must fail."""

    def forward(self, a):
        return a ** 3

    def backward(self, g):
        (a,) = self.inputs
        return g * (a.detach() * a.detach() * 3.0)


class RightCube(Function):
    def forward(self, a):
        return a ** 3

    def backward(self, g):
        (a,) = self.inputs
        return g * (a * a * 3.0)


def test_passes_a_correct_rule_first_and_second_order():
    x = leaf([0.5, -1.0, 2.0])
    assert gradcheck(RightCube.apply, [x])


def test_catches_wrong_first_order_and_names_input_and_element():
    x, y = leaf([0.5, -1.0, 2.0]), leaf([1.0, 2.0, 3.0])
    with pytest.raises(GradcheckError, match=r"first order: input 1 \(shape \(3,\)\).*worst element \(2,\)"):
        gradcheck(lambda a, b: a + WrongFirstOrder.apply(b), [x, y])


def test_catches_wrong_second_order_only_with_second_order():
    x = leaf([0.5, -1.0, 2.0])
    assert gradcheck(WrongSecondOrder.apply, [x], second_order=False)
    with pytest.raises(GradcheckError, match="second order"):
        gradcheck(WrongSecondOrder.apply, [x])


def test_tuple_outputs_with_integer_outputs_and_constant_inputs():
    x = leaf([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
    c = ad.tensor([1.0, 2.0, 3.0])  # not differentiated
    assert gradcheck(lambda t, k: (t * k).max(1), [x, c])
    assert gradcheck(lambda t: (t.sum(0), t.exp()), [x])


def test_rejects_float32_and_no_differentiable_input():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(ad.exp, [ad.tensor(np.ones(2, dtype=np.float32), requires_grad=True)])
    with pytest.raises(ValueError, match="no input has requires_grad"):
        gradcheck(ad.exp, [ad.tensor([1.0])])


def test_input_the_output_ignores_and_empty_input():
    x, y = leaf([1.0, 2.0]), leaf([3.0])
    assert gradcheck(lambda a, b: a * 2.0, [x, y])
    assert gradcheck(lambda a: a.exp(), [leaf(np.zeros((0, 2)))])
