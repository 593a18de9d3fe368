"""Per-token int8 MatMuls (valuedrift.classifier.pertoken): exactness where it matters, independence between tokens."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from valuedrift.classifier.pertoken import per_token_int8


def _linear(w: np.ndarray, opset: int = 17):
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, None, w.shape[0]])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None, w.shape[1]])],
                          [numpy_helper.from_array(w, "w")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("opset", [17, 18])  # ReduceMax takes its axes as an attribute before 18, an input after
def test_each_token_is_quantised_alone_so_an_outlier_token_costs_the_others_nothing(opset):
    import onnxruntime as ort

    rng = np.random.default_rng(5)
    w = rng.normal(size=(64, 16)).astype(np.float32)
    x = rng.normal(size=(1, 6, 64)).astype(np.float32)
    loud = x.copy()
    loud[0, 2] *= 1000.0  # one token three orders of magnitude larger, as in a down-projection's input
    model = per_token_int8(_linear(w, opset), ["mm"])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    quiet_y, loud_y = (session.run(None, {"x": v})[0] for v in (x, loud))
    others = [0, 1, 3, 4, 5]
    np.testing.assert_array_equal(loud_y[0, others], quiet_y[0, others])  # bit-identical: no shared scale
    exact = x @ w
    err = np.abs(quiet_y - exact).max() / np.abs(exact).max()
    assert err < 0.02, err  # int8 on both sides: about 1 % of the largest output
    np.testing.assert_allclose(ReferenceEvaluator(model).run(None, {"x": x})[0], quiet_y, rtol=1e-5, atol=1e-5)


def test_a_name_that_is_not_a_constant_weight_matmul_is_refused():
    with pytest.raises(ValueError, match="no MatMul with a constant weight named \\['nope'\\]"):
        per_token_int8(_linear(np.ones((4, 2), np.float32)), ["mm", "nope"])
