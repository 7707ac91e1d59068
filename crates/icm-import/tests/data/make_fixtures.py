"""Writes the PyTorch checkpoint fixtures of crates/icm-import/tests/torch.rs.

Regenerate (from the workspace root; torch 2.11.0 and CompressAI 1.2.8 were used):

    ~/.cache/icm-venv/bin/python crates/icm-import/tests/data/make_fixtures.py

Every value is chosen by a formula that the Rust test recomputes (so the test needs no
Python), except those of the real CompressAI model, whose names, dtypes, shapes and
FNV-1a-64 hashes of the little-endian element bytes are written to compressai_msh.json.
The zip files embed a random serialization id and the legacy files memory addresses as
storage keys, so regenerating changes the bytes but not the content.

Files:
  plain.pt, plain_legacy.pt        an OrderedDict of tensors of every dtype, views
                                   (transpose, slice with offset, expand, two views of one
                                   storage), a 0-dim and a zero-size tensor, a Parameter;
                                   zip format / legacy format (without "u16", which torch
                                   cannot load back from the legacy format).
  checkpoint.pth.tar               a training checkpoint as CompressAI's examples/train.py
                                   writes it ("epoch", "state_dict", "loss", "optimizer",
                                   "aux_optimizer", "lr_scheduler") plus values of many
                                   Python types, a tensor subclass and a Parameter with an
                                   attribute; zip format, pickle protocol 2 (the default).
  checkpoint_p5.pth.tar            the same object, zip format, pickle protocol 5.
  checkpoint_legacy_p4.pth.tar     the same object, legacy format, pickle protocol 4.
  dataparallel.pt                  the state dict of nn.DataParallel(model) ("module." names).
  pickle_p0.pkl ... pickle_p5.pkl  plain pickles (no torch) of PICKLE_VALUE, one per protocol;
                                   the test wraps them in a legacy-format envelope.
  compressai_msh.pt, compressai_msh_legacy.pt, compressai_msh.json
                                   MeanScaleHyperprior(N=2, M=3) after update(force=True)
                                   with a short scale table; its state dict both ways.
"""

import collections
import datetime
import json
import os
import pickle
import types

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


def path(name):
    return os.path.join(HERE, name)


def plain_state_dict():
    base = torch.arange(8, dtype=torch.int64)
    sd = collections.OrderedDict()
    sd["f32"] = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) * 0.5 - 3.0
    sd["f64"] = torch.arange(5, dtype=torch.float64) / 3
    sd["f16"] = (torch.arange(-4, 6, dtype=torch.float32) * 0.25).to(torch.float16)
    sd["bf16"] = (torch.arange(-3, 3, dtype=torch.float32) * 1.5).to(torch.bfloat16)
    sd["i64"] = (torch.arange(6, dtype=torch.int64) - 3) * 10**12
    sd["i32"] = torch.arange(-6, 6, dtype=torch.int32).reshape(3, 4)
    sd["i16"] = torch.arange(-2, 2, dtype=torch.int16) * 1000
    sd["i8"] = torch.arange(-128, 128, 51, dtype=torch.int8)
    sd["u8"] = torch.arange(0, 256, 85, dtype=torch.uint8)
    sd["bool"] = torch.arange(5) % 2 == 0
    sd["u16"] = torch.tensor([0, 1000, 65535], dtype=torch.uint16)
    sd["transposed"] = torch.arange(12, dtype=torch.float32).reshape(3, 4).t()
    sd["sliced"] = torch.arange(20, dtype=torch.float32).reshape(4, 5)[1:3, ::2]
    sd["expanded"] = torch.arange(3, dtype=torch.float32).expand(2, 3)
    sd["shared_a"] = base[:4]
    sd["shared_b"] = base[4:]
    sd["empty"] = torch.zeros(0, 3)
    sd["scalar"] = torch.tensor(7.5)
    sd["param"] = nn.Parameter(torch.arange(4, dtype=torch.float32) + 0.5)
    assert not sd["transposed"].is_contiguous() and not sd["sliced"].is_contiguous()
    assert sd["sliced"].storage_offset() == 5
    return sd


def tiny_model():
    """Conv(1->2, 3x3), ReLU, Conv(2->1, 1x1); parameter k (in order) holds
    (arange(numel) - numel // 2) * 0.125 + k, reshaped."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 1, 1))
    return model


def set_formula_params(model):
    with torch.no_grad():
        for k, p in enumerate(model.parameters()):
            n = p.numel()
            p.copy_(((torch.arange(n, dtype=torch.float32) - n // 2) * 0.125 + k).reshape(p.shape))


class SubTensor(torch.Tensor):
    """A tensor subclass: saved through torch._tensor._rebuild_from_type_v2."""


def training_checkpoint():
    # A Parameter with an attribute: saved through torch._utils._rebuild_parameter_with_state.
    param_with_state = nn.Parameter(torch.full((2,), -1.0))
    param_with_state.tag = "x"
    torch.manual_seed(0)
    model = tiny_model()
    aux = nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    aux_optimizer = torch.optim.Adam([aux], lr=1e-3)
    lr_scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, "min")
    loss = model(torch.ones(1, 1, 4, 4)).sum()
    loss.backward()
    optimizer.step()
    lr_scheduler.step(0.5)
    set_formula_params(model)
    return {
        "epoch": 7,
        "state_dict": model.state_dict(),
        "loss": torch.tensor(0.25),
        "optimizer": optimizer.state_dict(),
        "aux_optimizer": aux_optimizer.state_dict(),
        "lr_scheduler": lr_scheduler.state_dict(),
        "note": "h\u00e9llo \u2603",
        "raw": b"\x00\xffab",
        "big": 2**70,
        "neg_big": -(2**70) - 1,
        "floats": [0.1, float("inf"), -2.5],
        "set": {3},
        "nothing": None,
        "nested": {"a": (1, (2, [3, True]))},
        "device": torch.device("cpu"),
        "dtype": torch.float16,
        "subclass": torch.arange(3, dtype=torch.float32).as_subclass(SubTensor),
        "param_with_state": param_with_state,
    }


_shared = [1]

# Values of many types and sizes, so that each protocol uses many of its opcodes.
PICKLE_VALUE = {
    "int": [0, 1, -1, 255, 256, 65535, 65536, -(2**31), 2**31 - 1, 2**31, 2**63 - 1, -(2**63), 2**64, -(2**100)],
    "float": [0.0, -1.5, 1e300, float("inf")],
    "str": ["", "a", "\u00e9\u2603\\\n", "x" * 300],
    "bytes": [b"", b"\x00\xff", b"y" * 300],
    "bytearray": bytearray(b"ba"),
    "tuples": [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)],
    "consts": [True, False, None],
    "set": {5},
    "frozenset": frozenset({6}),
    "shared": [_shared, _shared],
    "namespace": types.SimpleNamespace(a=1),
    "ordered": collections.OrderedDict([("k", 1)]),
    "date": datetime.date(2020, 1, 2),
}


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    sd = plain_state_dict()
    torch.save(sd, path("plain.pt"))
    # torch 2.11 writes a uint16 tensor (an UntypedStorage) in the legacy format but cannot
    # load it back; the legacy fixture leaves it out.
    legacy = collections.OrderedDict((k, v) for k, v in sd.items() if k != "u16")
    torch.save(legacy, path("plain_legacy.pt"), _use_new_zipfile_serialization=False)

    ckpt = training_checkpoint()
    torch.save(ckpt, path("checkpoint.pth.tar"))
    torch.save(ckpt, path("checkpoint_p5.pth.tar"), pickle_protocol=5)
    torch.save(ckpt, path("checkpoint_legacy_p4.pth.tar"), _use_new_zipfile_serialization=False, pickle_protocol=4)

    for protocol in range(6):
        with open(path("pickle_p%d.pkl" % protocol), "wb") as f:
            pickle.dump(PICKLE_VALUE, f, protocol=protocol)

    model = tiny_model()
    set_formula_params(model)
    torch.save(nn.DataParallel(model).state_dict(), path("dataparallel.pt"))

    from compressai.models import MeanScaleHyperprior

    torch.manual_seed(0)
    net = MeanScaleHyperprior(N=2, M=3)
    scale_table = torch.exp(torch.linspace(torch.log(torch.tensor(0.11)), torch.log(torch.tensor(2.0)), 4))
    net.update(scale_table=scale_table, force=True)
    msh = net.state_dict()
    torch.save(msh, path("compressai_msh.pt"))
    torch.save(msh, path("compressai_msh_legacy.pt"), _use_new_zipfile_serialization=False)
    expected = {
        name: {
            "dtype": str(t.dtype).removeprefix("torch."),
            "shape": list(t.shape),
            "fnv1a64": "%016x" % fnv1a64(t.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes()),
        }
        for name, t in msh.items()
    }
    with open(path("compressai_msh.json"), "w") as f:
        lines = ["  %s: %s" % (json.dumps(k), json.dumps(v, sort_keys=True)) for k, v in sorted(expected.items())]
        f.write("{\n" + ",\n".join(lines) + "\n}\n")

    # Check that torch reads back what was written.
    for name, saved in [("plain.pt", sd), ("plain_legacy.pt", legacy)]:
        back = torch.load(path(name))
        assert list(back) == list(saved) and all(torch.equal(back[k], v) for k, v in saved.items()), name
    for name in os.listdir(HERE):
        print("%-32s %7d bytes" % (name, os.path.getsize(path(name))))


if __name__ == "__main__":
    main()
