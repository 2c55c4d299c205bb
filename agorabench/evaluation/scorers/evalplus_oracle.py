"""EvalPlus's differential test, written to run inside the sandbox (standard library only).

EvalPlus (evalplus 0.3.1, evalplus/eval/__init__.py `unsafe_execute` and evalplus/gen/util.py
`trusted_exec`) scores a solution by calling it on each test input and comparing its output with the
canonical solution's output on a deep copy of the same input:
- outputs equal (`==`) pass;
- otherwise, when the task has a tolerance `atol` (forced to 1e-6 from the first input whose expected
  output is a float or a list/tuple of floats, and kept for the inputs after it, as EvalPlus does), the
  output must have the expected type and length and be close as numpy.allclose(rtol=1e-7, atol) is;
- HumanEval/32 (`find_zero`) passes when |poly(xs, output)| <= atol (EvalPlus's special oracle);
- MBPP+ inputs are decoded per task (tuples, sets, complex numbers) and MBPP+'s special oracles apply
  (set comparison, "not None" outputs, four task-specific checks).
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


# MBPP+ inputs are stored as JSON; EvalPlus turns lists back into the tuples, sets and complex numbers
# some tasks take (evalplus/data/mbpp.py `mbpp_deserialize_inputs`; the task numbers are its own).
_EVALPLUS_MBPP_DECODE = {
    "args_tuples": (2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630,
                    726, 740, 744, 809),
    "args_lists_of_tuples": (63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780),
    "first_list_of_tuples": (75, 413, 444, 753),
    "second_tuple": (106, 750),
    "sets": (115,),
    "float_complex": (124,),
    "first_tuple": (250, 405, 446, 617, 720, 763, 808),
    "nested_tuples": (259, 401, 445),
    "items_tuples": (278,),
    "first_tuple_of_three": (307,),
    "dict_of_tuples": (722,),
    "complex": (252,),
    "all_tuples": (580, 615, 791),
}  # fmt: skip
# MBPP+ special oracles (evalplus/eval/_special_oracle.py): set comparison, or only "not None".
_EVALPLUS_MBPP_SET_EQ = ("similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly",
                         "larg_nnum", "intersection_array", "find_dissimilar", "Diff")  # fmt: skip
_EVALPLUS_MBPP_NOT_NONE = ("check_str", "text_match_three", "text_starta_endb")


def _evalplus_all_tuples(x: object) -> object:
    return tuple(_evalplus_all_tuples(i) for i in x) if isinstance(x, list) else x


def _evalplus_mbpp_inputs(task: int, inputs: list) -> list:
    """EvalPlus's per-task decoding of MBPP+ inputs (the others are used as stored)."""
    kind = next((k for k, ids in _EVALPLUS_MBPP_DECODE.items() if task in ids), None)
    t = tuple
    decode = {
        "args_tuples": lambda inp: [t(a) for a in inp],
        "args_lists_of_tuples": lambda inp: [[t(x) for x in a] for a in inp],
        "first_list_of_tuples": lambda inp: [[t(x) for x in inp[0]], inp[1]],
        "second_tuple": lambda inp: [inp[0], t(inp[1])],
        "sets": lambda inp: [[set(x) if isinstance(x, list) and len(x) else {} for x in inp[0]]],
        "float_complex": lambda inp: (float(inp[0]), complex(inp[1])),
        "first_tuple": lambda inp: [t(inp[0]), inp[1]],
        "nested_tuples": lambda inp: [t(t(x) for x in a) for a in inp],
        "items_tuples": lambda inp: [t(t(x) if isinstance(x, list) else x for x in inp[0])],
        "first_tuple_of_three": lambda inp: [t(inp[0]), inp[1], inp[2]],
        "dict_of_tuples": lambda inp: [{k: t(v) for k, v in inp[0].items()}, *inp[1:]],
        "complex": lambda inp: [complex(inp[0])],
        "all_tuples": _evalplus_all_tuples,
    }
    return inputs if kind is None else [decode[kind](inp) for inp in inputs]


def _evalplus_surface_area(base_edge: float, height: float) -> int:
    import math

    slant = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 4 * (base_edge * slant) / 2)


def _evalplus_digit_distance(num1: int, num2: int) -> int:
    a, b = str(num1), str(num2)
    width = max(len(a), len(b))
    return sum(abs(int(x) - int(y)) for x, y in zip(a.zfill(width), b.zfill(width), strict=True))


def _evalplus_mbpp_exact(entry_point: str, inp: list, out: object, expected: object, atol: float) -> bool:
    """EvalPlus's exact-match rule for an MBPP+ task, special oracles included."""
    exact = out == expected
    if entry_point == "are_equivalent":  # Mbpp/164
        return True
    if entry_point == "sum_div":  # Mbpp/295
        return exact or out == 0
    if entry_point == "surface_Area":  # Mbpp/581
        return exact or abs(out - _evalplus_surface_area(*inp)) <= atol
    if entry_point == "digit_distance_nums":  # Mbpp/558
        return exact or out == _evalplus_digit_distance(*inp)
    if entry_point in _EVALPLUS_MBPP_SET_EQ:
        return set(out) == set(expected)
    if entry_point in _EVALPLUS_MBPP_NOT_NONE:
        return out == expected if isinstance(out, bool) else expected == (out is not None)
    return exact


def _evalplus_check(
    task_id: str, entry_point: str, reference: str, inputs_json: str, atol: float, scope: dict
) -> None:
    """Raise AssertionError at the first input where scope[entry_point] disagrees with `reference`."""
    import copy
    import json

    mbpp = task_id.startswith("Mbpp/")
    reference_scope: dict = {}
    exec(reference, reference_scope)
    expected_fn, fn = reference_scope[entry_point], scope[entry_point]
    inputs = json.loads(inputs_json)
    if mbpp:
        inputs = _evalplus_mbpp_inputs(int(task_id.split("/")[1]), inputs)
    for i, inp in enumerate(inputs):
        expected = expected_fn(*copy.deepcopy(inp))
        if mbpp and entry_point in _EVALPLUS_MBPP_NOT_NONE:
            expected = expected is not None
        out = fn(*copy.deepcopy(inp))
        if not mbpp and entry_point == "find_zero":
            assert abs(_evalplus_poly(*inp, out)) <= atol, f"input #{i}: poly(xs, {out!r}) is not ~0"
            continue
        exact = _evalplus_mbpp_exact(entry_point, inp, out, expected, atol) if mbpp else out == expected
        if atol == 0 and _evalplus_is_floats(expected):
            atol = 1e-6
        if not exact and atol != 0:
            assert type(out) is type(expected), (
                f"input #{i}: {type(out).__name__} != {type(expected).__name__}"
            )
            assert _evalplus_allclose(out, expected, atol), f"input #{i}: {out!r} not close to {expected!r}"
        else:
            assert exact, f"input #{i}: {out!r} != {expected!r}"
