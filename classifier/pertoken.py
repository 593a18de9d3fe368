"""Per-token int8 for chosen MatMuls of an ONNX graph: one activation scale per token, built from plain ONNX ops.

ONNX Runtime's dynamic int8 (``DynamicQuantizeLinear``) gives a whole activation tensor one scale. That fails
where a few *tokens* carry values far larger than the rest, as the FFN down-projections' inputs (the GELU
outputs) do: every other token is left a handful of int8 steps. Here each token (the last axis) gets its own
symmetric scale ``s = max|x| / 127``; the activation is stored as uint8 around 128 and multiplied with
per-output-channel int8 weights by ``MatMulInteger``, and the int32 result is scaled back to fp32. Every scale
depends only on its own token, so a pair's logits do not depend on what else is in its batch.

>>> import numpy as np
>>> from onnx import TensorProto, helper, numpy_helper
>>> w = numpy_helper.from_array(np.array([[1.0, -2.0], [0.5, 4.0], [3.0, 0.0]], np.float32), "w")
>>> g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])], [w])
>>> m = per_token_int8(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), ["mm"])
>>> sorted({n.op_type for n in m.graph.node} & {"MatMul", "MatMulInteger"})
['MatMulInteger']
>>> from onnx.reference import ReferenceEvaluator
>>> x = np.array([[100.0, 1.0, -3.0], [0.01, 0.02, 0.03]], np.float32)
>>> y = ReferenceEvaluator(m).run(None, {"x": x})[0]
>>> bool(np.allclose(y, x @ numpy_helper.to_array(w), rtol=0.02, atol=1e-3))  # the small token keeps its precision
True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

_PREFIX = "per_token"


def per_token_int8(model: Any, node_names: Iterable[str]) -> Any:
    """Return a copy of ``model`` with each named MatMul (constant weight) computed with per-token int8 activations."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    weights = {i.name: i for i in graph.initializer}
    wanted = set(node_names)
    found = {n.name for n in graph.node if n.op_type == "MatMul" and n.name in wanted and n.input[1] in weights}
    if found != wanted:
        raise ValueError(f"per-token int8: no MatMul with a constant weight named {sorted(wanted - found)}")
    opset = next((o.version for o in out.opset_import if o.domain in ("", "ai.onnx")), 17)
    graph.initializer.extend([numpy_helper.from_array(np.array(v, dt), f"{_PREFIX}/{name}") for name, v, dt in (
        ("127", 127.0, np.float32), ("eps", 1e-12, np.float32), ("128", 128.0, np.float32),
        ("zero_point", 128, np.uint8), ("last_axis", [-1], np.int64))])
    quantized: dict[str, tuple[str, str]] = {}  # activation -> (its uint8 tensor, its per-token scale)
    replaced: dict[str, list[Any]] = {}
    for node in [n for n in graph.node if n.name in wanted]:
        x, w_name, y = node.input[0], node.input[1], node.output[0]
        new: list[Any] = []
        if x not in quantized:
            p = f"{x}/{_PREFIX}"
            if opset >= 18:  # ReduceMax takes its axes as an input from opset 18 on, as an attribute before
                reduce = helper.make_node("ReduceMax", [f"{p}/abs", f"{_PREFIX}/last_axis"], [f"{p}/amax"], keepdims=1)
            else:
                reduce = helper.make_node("ReduceMax", [f"{p}/abs"], [f"{p}/amax"], axes=[-1], keepdims=1)
            new += [helper.make_node("Abs", [x], [f"{p}/abs"]), reduce,
                    helper.make_node("Max", [f"{p}/amax", f"{_PREFIX}/eps"], [f"{p}/amax_pos"]),
                    helper.make_node("Div", [f"{p}/amax_pos", f"{_PREFIX}/127"], [f"{p}/scale"]),
                    helper.make_node("Div", [x, f"{p}/scale"], [f"{p}/steps"]),
                    helper.make_node("Round", [f"{p}/steps"], [f"{p}/rounded"]),
                    helper.make_node("Add", [f"{p}/rounded", f"{_PREFIX}/128"], [f"{p}/shifted"]),
                    helper.make_node("Cast", [f"{p}/shifted"], [f"{p}/uint8"], to=TensorProto.UINT8)]
            quantized[x] = (f"{p}/uint8", f"{p}/scale")
        q, scale = quantized[x]
        w = numpy_helper.to_array(weights[w_name])
        w_scale = (np.maximum(np.abs(w).max(axis=0), 1e-12) / 127.0).astype(np.float32)
        graph.initializer.extend([numpy_helper.from_array(np.round(w / w_scale).astype(np.int8), f"{w_name}/int8"),
                                  numpy_helper.from_array(w_scale, f"{w_name}/int8_scale")])
        new += [helper.make_node("MatMulInteger", [q, f"{w_name}/int8", f"{_PREFIX}/zero_point"], [f"{y}/int32"],
                                 name=f"{node.name}/{_PREFIX}"),
                helper.make_node("Cast", [f"{y}/int32"], [f"{y}/float"], to=TensorProto.FLOAT),
                helper.make_node("Mul", [f"{y}/float", scale], [f"{y}/token_scaled"]),
                helper.make_node("Mul", [f"{y}/token_scaled", f"{w_name}/int8_scale"], [y])]
        replaced[node.name] = new
    nodes = list(graph.node)
    del graph.node[:]
    for node in nodes:
        graph.node.extend(replaced.get(node.name, [node]))
    used = {name for node in graph.node for name in node.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return out
