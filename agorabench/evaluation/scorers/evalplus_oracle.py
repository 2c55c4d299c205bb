"""EvalPlus's differential test, written to run inside the sandbox (standard library only).

EvalPlus (evalplus 0.3.1, evalplus/eval/__init__.py `unsafe_execute` and evalplus/gen/util.py
`trusted_exec`) scores a solution by calling it on each test input and comparing its output with the
canonical solution's output on a deep copy of the same input:
- outputs equal (`==`) pass;
- otherwise, when the task has a tolerance `atol` (forced to 1e-6 from the first input whose expected
  output is a float or a list/tuple of floats, and kept for the inputs after it, as EvalPlus does), the
  output must have the expected type and length and be close as numpy.allclose(rtol=1e-7, atol) is;
- HumanEval/32 (`find_zero`) passes when |poly(xs, output)| <= atol (EvalPlus's special oracle).
The solution must pass every input. This file is sent whole, as text, after the solution in the sandboxed
program (`agorabench.data.benchmarks`, format evalplus_jsonl), so it imports nothing at module level
and uses no third-party package (the sandbox has none).
"""


def _evalplus_is_floats(x: object) -> bool:
    if isinstance(x, float):
        return True
    return isinstance(x, list | tuple) and bool(x) and all(isinstance(i, float) for i in x)


def _evalplus_allclose(out: object, exp: object, atol: float, rtol: float = 1e-7) -> bool:
    """numpy.allclose(out, exp, rtol, atol) for numbers and equally shaped (nested) lists/tuples."""
    import math

    if isinstance(exp, list | tuple):
        if not isinstance(out, list | tuple):
            return all(_evalplus_allclose(out, e, atol, rtol) for e in exp)  # a scalar broadcasts
        if len(out) != len(exp):
            raise ValueError(f"shapes differ: {len(out)} vs {len(exp)}")
        return all(_evalplus_allclose(o, e, atol, rtol) for o, e in zip(out, exp, strict=True))
    if isinstance(out, list | tuple):
        return all(_evalplus_allclose(o, exp, atol, rtol) for o in out)
    a, b = complex(out), complex(exp)  # bool and int are numbers for numpy too; str raises
    if a.imag == 0 and b.imag == 0:
        x, y = a.real, b.real
        if math.isinf(x) or math.isinf(y):
            return x == y
        return abs(x - y) <= atol + rtol * abs(y)
    return abs(a - b) <= atol + rtol * abs(b)


def _evalplus_poly(xs: list, x: float) -> float:
    import math

    return sum(coeff * math.pow(x, i) for i, coeff in enumerate(xs))


def _evalplus_check(entry_point: str, reference: str, inputs_json: str, atol: float, scope: dict) -> None:
    """Raise AssertionError at the first input where scope[entry_point] disagrees with `reference`."""
    import copy
    import json

    reference_scope: dict = {}
    exec(reference, reference_scope)
    expected_fn, fn = reference_scope[entry_point], scope[entry_point]
    for i, inp in enumerate(json.loads(inputs_json)):
        expected = expected_fn(*copy.deepcopy(inp))
        out = fn(*copy.deepcopy(inp))
        if entry_point == "find_zero":
            assert abs(_evalplus_poly(*inp, out)) <= atol, f"input #{i}: poly(xs, {out!r}) is not ~0"
            continue
        exact = out == expected
        if atol == 0 and _evalplus_is_floats(expected):
            atol = 1e-6
        if not exact and atol != 0:
            assert type(out) is type(expected), (
                f"input #{i}: {type(out).__name__} != {type(expected).__name__}"
            )
            assert _evalplus_allclose(out, expected, atol), f"input #{i}: {out!r} not close to {expected!r}"
        else:
            assert exact, f"input #{i}: {out!r} != {expected!r}"
