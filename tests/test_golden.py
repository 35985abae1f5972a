"""Pinned output hashes. A change here changes users' weights: it is a breaking change that needs
a CHANGELOG entry and a version bump, never a silent update of these strings."""

import hashlib

import numpy as np
import pytest
from cases import FLOAT_CASES, bits_case
from conftest import BF16

GOLDEN = {
    ("normal", "float32"): "d36d716a2c2df4da35ce0509560d5f2649a1c14671f3f45ce3431aa436425fdb",
    ("normal", "float64"): "419a4ba41890ba35ba929678c87a97b130037487c74d9b9a560759dfe5647f48",
    ("normal", "float16"): "e417db2db86c59212c39e5d3e2515dd955ecd7d8ddf486e4eca65a19f6e92977",
    ("normal", "bfloat16"): "f0d14a8fab3c7f3032be639c41a576062aa8b6779e05441a5d5a03a92875b0c9",
    ("trunc_normal", "float32"): "7c4844c37951c531f53d7c03f231a10f8f2586c402e05f73d086c7a89a7bf8da",
    ("trunc_normal", "float64"): "b2443ca689d61fa4aee4674d84d0373e0f8c097c4262199f0a0228eece4e29ef",
    ("trunc_normal", "float16"): "0dcdcbc50d8fdaabfe490344e2e4f210cc5005e0dec63905a93d7f6b4ede1b8e",
    ("trunc_normal", "bfloat16"): "1f5b740cf4f0cf6fb637bb1a61f4f14e43a23fe5ffba4687aa720b2e281da14d",
    ("trunc_tail", "float32"): "b472080447d33f0dabea67d6e045f2388a8fa298262a9aa2cf2680eb1d4ab1de",
    ("trunc_tail", "float64"): "9e633da23d17c8ba27fd83fc548e2eb14ef81ebde8cd945023f7c27736165d72",
    ("trunc_tail", "float16"): "1ab8c181cb6081a9aac155ab47bc6a0bbf0201ae4e050499dc42d9f4e4440d2d",
    ("trunc_tail", "bfloat16"): "bfed5c16080bd462eeeca075ebf0b524b8422de07083d40035f9bfe7c217eadf",
    ("trunc_tiny_std", "float32"): "69fb00ca705eb5b77665f5e533b9769ff0b10f1a8362d1cedb33adcd6b2e1eaa",
    ("trunc_tiny_std", "float64"): "3ae3ebb1dfb5d1726aeabefaec07b7cd02dfe00d8f3f665123d1fe637e075f7a",
    ("trunc_tiny_std", "float16"): "fcdf11702bda7d2f6fe6107256201f9e3248faf345d0202e40feb60f380489d7",
    ("trunc_tiny_std", "bfloat16"): "6cb844de945f3715c8ed08312f22cd5dc4f1d632148a35a2656a45455da815f8",
    ("uniform", "float32"): "688a65c645b9152d979e9cd25cc965a4e34e3ee81925f677bddfcf521a3b0aa8",
    ("uniform", "float64"): "b48376ad3f83567fa349bdb318cd66f1f38a32ebee4480a193eb411496b5e5ba",
    ("uniform", "float16"): "bcd58c0f58e033373d5570e4dff36ee93727e7a1b24df2eddc7ffe6b1c6a9bec",
    ("uniform", "bfloat16"): "c653e4ed228e4f91635def6b6fae457cc4310e0f65def2a8d23167764b9d4988",
    ("bits", "uint32"): "6f7dfd00c5c588902c57229dd80d63ebe2d9c8ee4fdf7cc4c063740c81df5894",
}
DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "bfloat16": BF16, "uint32": np.uint32}


@pytest.mark.parametrize("case, dtype", sorted(GOLDEN), ids=lambda v: str(v))
def test_golden_hash(case, dtype):
    _, call, _ = bits_case() if case == "bits" else FLOAT_CASES[case]
    out = call(np.empty((3, 1001), DTYPES[dtype]), seed=12345, name="golden")
    assert hashlib.sha256(out.tobytes()).hexdigest() == GOLDEN[case, dtype]


def test_golden_keys():
    import fastinit as fi

    assert fi.key(0, "") == (1140075542, 4266292422)
    assert fi.key(12345, "golden") == (822650328, 3577052629)
    assert fi.key((1 << 64) - 1, "model.layers.0.mlp.down_proj.weight") == (3803524490, 3956038608)
