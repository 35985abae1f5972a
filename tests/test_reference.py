"""The kernels equal the pure NumPy statement of the contract (tests/reference.py) bit for bit."""

import numpy as np
import pytest
import reference
from cases import FLOAT_CASES, bits_case
from conftest import FLOAT_DTYPES, assert_bits_equal

# (shape of out, global_shape, offset): whole tensors, boxes at offsets that are not multiples
# of 4, N-d boxes, runs that cross the 2**32-block boundary (element 2**34 for one-word
# dtypes, 2**33 for float64) far beyond 2**32 elements, and runs of several passes of the staged
# normal kernel (STAGE_BLOCKS = 256 blocks, 1024 elements each)
BOXES = [
    ((7, 13), None, None),
    ((1,), None, None),
    ((4099,), None, None),
    ((3001,), (1 << 35,), ((1 << 34) - 1499,)),
    ((3, 5), (9, 17), (1, 3)),
    ((2, 3, 5), (4, 6, 7), (1, 2, 1)),
    ((2, 1, 17), (4, 6, 17), (2, 5, 0)),
    ((101,), (1 << 35,), ((1 << 34) - 51,)),
    ((101,), (1 << 35,), ((1 << 33) - 49,)),
    ((3, 9), (1 << 20, 1 << 20), ((1 << 19) + 3, (1 << 20) - 11)),
]


@pytest.mark.parametrize("box", BOXES, ids=lambda b: "x".join(map(str, b[0])) + f"@{b[2]}")
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("case", sorted(FLOAT_CASES))
def test_float_fills_equal_reference(case, dtype, box):
    kind, call, params = FLOAT_CASES[case]
    shape, global_shape, offset = box
    out = call(np.empty(shape, dtype), seed=2024, name="layer.0.weight", global_shape=global_shape, offset=offset)
    expected = reference.fill(kind, shape, dtype, 2024, "layer.0.weight", params(dtype),
                              global_shape=global_shape, offset=offset)
    assert_bits_equal(out, expected)


@pytest.mark.parametrize("box", BOXES, ids=lambda b: "x".join(map(str, b[0])) + f"@{b[2]}")
def test_random_bits_equal_reference(box):
    kind, call, _ = bits_case()
    shape, global_shape, offset = box
    out = call(np.empty(shape, np.uint32), seed=(1 << 64) - 1, name="ünïcode/名前", global_shape=global_shape,
               offset=offset)
    expected = reference.fill(kind, shape, np.uint32, (1 << 64) - 1, "ünïcode/名前", (),
                              global_shape=global_shape, offset=offset)
    assert_bits_equal(out, expected)


def test_reference_philox_known_answers():
    # the reference itself must be right: Random123's known answers
    w = reference.philox(0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344, 0xA4093822, 0x299F31D0)
    assert [int(x) for x in w] == [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]


def test_boxes_include_several_passes_of_the_staged_normal_kernel():
    from fastinit._kernels import STAGE_BLOCKS

    assert max(b[0][0] for b in BOXES if len(b[0]) == 1) >= 4 * 4 * STAGE_BLOCKS
