"""opgraph.save / opgraph.load under faults: atomic saves, corrupt and hostile files."""
import io
import os
import stat
import struct
import zipfile

import numpy as np
import pytest

import opgraph


def _state():
    return {"w": np.arange(6.0).reshape(2, 3), "b": np.ones(3, np.float32),
            "steps": np.array(7), "mask": np.array([True, False])}


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def _npy_bytes(header, payload=b"", version=(1, 0)):
    """A .npy file with a hand-written header dict (as a string)."""
    text = header.encode("latin1")
    prefix = 8 + (2 if version == (1, 0) else 4)
    pad = -(prefix + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    size = struct.pack("<H" if version == (1, 0) else "<I", len(text))
    return b"\x93NUMPY" + bytes(version) + size + text + payload


def _zip(path, entries, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in entries:
            z.writestr(name, data)


# ---------------------------------------------------------------------------
# save is atomic


@pytest.mark.parametrize("fault", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_a_fault_mid_save_keeps_the_previous_file_and_leaves_no_temp(tmp_path, monkeypatch,
                                                                     fault):
    path = tmp_path / "ckpt.npz"
    opgraph.save(_state(), path)
    before = path.read_bytes()
    real_write = np.lib.format.write_array
    calls = []

    def failing_write(fp, array, **kw):  # the second entry fails after the first is written
        calls.append(1)
        if len(calls) == 2:
            fp.write(b"partial")
            raise fault
        return real_write(fp, array, **kw)

    monkeypatch.setattr(np.lib.format, "write_array", failing_write)
    with pytest.raises(type(fault)):
        opgraph.save({"w": np.zeros((50, 50)), "b": np.zeros(9)}, path)
    assert len(calls) == 2
    assert path.read_bytes() == before
    assert _files(tmp_path) == ["ckpt.npz"]
    monkeypatch.undo()
    np.testing.assert_array_equal(opgraph.load(path)["w"].numpy(), _state()["w"])


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_a_failing_fsync_or_rename_keeps_the_previous_file(tmp_path, monkeypatch, step):
    path = tmp_path / "ckpt.npz"
    opgraph.save(_state(), path)
    before = path.read_bytes()

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, step, fail)
    with pytest.raises(OSError, match="No space left"):
        opgraph.save({"w": np.zeros(4)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _files(tmp_path) == ["ckpt.npz"]


def test_save_replaces_the_file_and_writes_through_a_symlink(tmp_path):
    real = tmp_path / "real.npz"
    opgraph.save({"w": np.zeros(2)}, real)
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    opgraph.save({"w": np.ones(3)}, link)
    assert link.is_symlink()
    np.testing.assert_array_equal(opgraph.load(real)["w"].numpy(), np.ones(3))
    assert _files(tmp_path) == ["link.npz", "real.npz"]


def test_saved_file_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        opgraph.save({"w": np.zeros(2)}, tmp_path / "w.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "w.npz").stat().st_mode) == 0o644


def test_save_names_a_missing_folder_and_a_folder_target(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        opgraph.save({"w": np.zeros(2)}, tmp_path / "nope" / "w.npz")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        opgraph.save({"w": np.zeros(2)}, tmp_path)
    with pytest.raises(IsADirectoryError, match="load: .* is a folder"):
        opgraph.load(tmp_path)
    assert _files(tmp_path) == []


def test_save_to_a_file_object(tmp_path):
    with open(tmp_path / "w.npz", "wb") as f:
        opgraph.save({"w": np.arange(3)}, f)
    np.testing.assert_array_equal(opgraph.load(tmp_path / "w.npz")["w"].numpy(), np.arange(3))
    buffer = io.BytesIO()  # and back from one, as torch.save / torch.load
    opgraph.save({"w": np.arange(3), "step": {"n": 2}}, buffer)
    buffer.seek(0)
    loaded = opgraph.load(buffer)
    assert loaded["step"] == {"n": 2} and loaded["w"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="load: BytesIO is not an opgraph .npz state dict"):
        opgraph.load(io.BytesIO(b"not a zip"))


# ---------------------------------------------------------------------------
# load refuses what is not a numeric state dict, naming the file


def test_keys_a_and_a_npy_never_alias(tmp_path):
    state = {"a": np.zeros(2), "a.npy": np.ones(3), "a.npy.npy": np.full(1, 5.0), "": np.eye(2)}
    opgraph.save(state, tmp_path / "k.npz")
    loaded = opgraph.load(tmp_path / "k.npz")
    assert list(loaded) == list(state)
    for k, v in state.items():
        np.testing.assert_array_equal(loaded[k].numpy(), v)


def test_every_truncation_of_a_file_is_a_value_error_naming_it(tmp_path):
    path = tmp_path / "ckpt.npz"
    opgraph.save(_state(), path)
    full = path.read_bytes()
    cut = tmp_path / "cut.npz"
    for n in [0, 1, 10, 40, len(full) // 3, len(full) // 2, len(full) - 30, len(full) - 1]:
        cut.write_bytes(full[:n])
        with pytest.raises(ValueError, match="cut.npz.*(truncated|corrupt)"):
            opgraph.load(cut)


def test_a_flipped_data_byte_is_a_value_error(tmp_path):
    path = tmp_path / "ckpt.npz"
    opgraph.save({"w": np.arange(100.0)}, path)
    raw = bytearray(path.read_bytes())
    raw[raw.index(b"\x93NUMPY") + 200] ^= 0xFF  # inside the array's data: a CRC mismatch
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"ckpt.npz: entry 'w' .*(truncated|corrupt)"):
        opgraph.load(path)


def test_a_header_claiming_an_absurd_size_is_refused_before_allocating(tmp_path):
    path = tmp_path / "huge.npz"
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 1000), }"
    _zip(path, [("w.npy", _npy_bytes(header, b"\0" * 64))])
    with pytest.raises(ValueError, match=r"huge.npz: entry 'w'.*claims shape.*holds 64 bytes"):
        opgraph.load(path)
    # too few bytes by one element
    _zip(path, [("w.npy", _npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                                     "'shape': (3,), }", b"\0" * 8))])
    with pytest.raises(ValueError, match="claims shape"):
        opgraph.load(path)


@pytest.mark.parametrize("header, why", [
    ("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", "dtype object"),
    ("{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", "dtype complex128"),
    ("{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }", "dtype <U3"),
    ("{'descr': '<M8[s]', 'fortran_order': False, 'shape': (1,), }", "dtype datetime64"),
    ("{'descr': [('x', '<f8')], 'fortran_order': False, 'shape': (1,), }", "dtype"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }", "shape"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (2.5,), }", "shape"),
    ("{'descr': '<f8', 'shape': (1,), }", ""),
    ("not a dict at all", ""),
])
def test_hand_crafted_bad_headers_are_named(tmp_path, header, why):
    path = tmp_path / "bad.npz"
    _zip(path, [("w.npy", _npy_bytes(header, b"\0" * 16))])
    with pytest.raises(ValueError, match=f"bad.npz: entry 'w' is not a plain numeric array.*{why}"):
        opgraph.load(path)


def test_pickles_and_other_entries_are_refused(tmp_path):
    import pickle
    path = tmp_path / "p.npz"
    _zip(path, [("w.npy", pickle.dumps({"a": 1}))])
    with pytest.raises(ValueError, match="p.npz: entry 'w' is not a plain numeric array"):
        opgraph.load(path)
    np.savez(path, w=np.array([{}], dtype=object))
    with pytest.raises(ValueError, match="entry 'w' is not a plain numeric array.*object"):
        opgraph.load(path)
    _zip(path, [("w.npy", _npy_bytes("{'descr': '<f8', 'fortran_order': False, "
                                     "'shape': (1,), }", b"\0" * 8)),
                ("run.pkl", pickle.dumps(1))])
    with pytest.raises(ValueError, match="entry 'run.pkl' is not a .npy array"):
        opgraph.load(path)


def test_a_duplicated_entry_is_refused(tmp_path):
    path = tmp_path / "d.npz"
    one = _npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", b"\0" * 8)
    with pytest.warns(UserWarning):  # zipfile warns about the duplicate name
        _zip(path, [("w.npy", one), ("w.npy", one)])
    with pytest.raises(ValueError, match="entry 'w' appears twice"):
        opgraph.load(path)


def test_numpy_written_archives_load(tmp_path):
    # savez_compressed, Fortran-order arrays, .npy format 2.0 and every numeric kind
    path = tmp_path / "np.npz"
    arrays = {"f": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
              "i": np.arange(5, dtype=np.int32), "u": np.arange(3, dtype=np.uint8),
              "b": np.array([True, False]), "e": np.zeros((0, 3))}
    np.savez_compressed(path, **arrays)
    loaded = opgraph.load(path)
    for k, v in arrays.items():
        np.testing.assert_array_equal(loaded[k].numpy(), v)
        assert loaded[k].shape == v.shape
    _zip(path, [("v2.npy", _npy_bytes("{'descr': '<f8', 'fortran_order': False, "
                                      "'shape': (2,), }", np.ones(2).tobytes(), (2, 0)))])
    np.testing.assert_array_equal(opgraph.load(path)["v2"].numpy(), np.ones(2))


def test_big_endian_entries_load_in_native_byte_order(tmp_path):
    path = tmp_path / "be.npz"
    _zip(path, [("w.npy", _npy_bytes("{'descr': '>f8', 'fortran_order': False, "
                                     "'shape': (3,), }", np.arange(3.0).astype(">f8").tobytes()))])
    w = opgraph.load(path)["w"]
    assert w.dtype == np.float64 and w.dtype.isnative
    np.testing.assert_array_equal(w.numpy(), np.arange(3.0))


def test_zip_sizes_that_lie_do_not_allocate_what_they_claim(tmp_path):
    import tracemalloc
    path = tmp_path / "lie.npz"
    claimed = 1 << 31  # 2 GiB of float64, in the .npy header and in both zip headers
    header = _npy_bytes(f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({claimed // 8},), }}")
    claimed += len(header)
    _zip(path, [("w.npy", header + b"\0" * 4096)])
    raw = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 18), (b"PK\x01\x02", 20)):  # local, central
        at = raw.index(signature) + offset
        raw[at:at + 8] = struct.pack("<II", claimed, claimed)  # compressed, uncompressed
    path.write_bytes(bytes(raw))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="lie.npz: entry 'w'"):
            opgraph.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20


def test_zero_dim_entries_keep_their_shape(tmp_path):
    # np.ascontiguousarray would write a 0-d array as shape (1,): a BatchNorm's
    # num_batches_tracked could not be loaded back
    path = tmp_path / "s.npz"
    opgraph.save({"s": opgraph.tensor(3.0), "n": np.array(7), "t": opgraph.zeros(2, 3).T}, path)
    loaded = opgraph.load(path)
    assert loaded["s"].shape == () and loaded["s"].item() == 3.0
    assert loaded["n"].shape == () and loaded["n"].dtype == np.int64
    assert loaded["t"].shape == (3, 2)
    bn = opgraph.nn.BatchNorm1d(3)
    opgraph.save(bn, path)
    opgraph.nn.BatchNorm1d(3).load_state_dict(opgraph.load(path))


def test_a_nested_checkpoint_resumes_training_exactly(tmp_path):
    # torch's idiom: model, optimizer and scheduler state with the epoch, in one file
    def make():
        opgraph.manual_seed(0)
        model = opgraph.nn.Linear(3, 2)
        opt = opgraph.optim.Adam(model.parameters(), lr=0.1)
        return model, opt, opgraph.optim.lr_scheduler.StepLR(opt, 2, gamma=0.5)

    x = opgraph.randn(4, 3, seed=1)

    def train(model, opt, sched, steps):
        for _ in range(steps):
            opt.zero_grad()
            (model(x) ** 2).sum().backward()
            opt.step()
            sched.step()

    straight = make()
    train(*straight, 5)
    model, opt, sched = make()
    train(model, opt, sched, 3)
    path = tmp_path / "checkpoint.npz"
    opgraph.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                  "scheduler": sched.state_dict(), "epoch": 3, "note": "run", "pair": (1.5, None)},
                 path)
    checkpoint = opgraph.load(path)
    assert checkpoint["epoch"] == 3 and checkpoint["note"] == "run"
    assert checkpoint["pair"] == (1.5, None)
    assert "optimizer/state/0/exp_avg" in np.load(path).files  # a plain .npz still
    model, opt, sched = make()
    model.load_state_dict(checkpoint["model"])
    opt.load_state_dict(checkpoint["optimizer"])
    sched.load_state_dict(checkpoint["scheduler"])
    train(model, opt, sched, 2)
    for a, b in zip(model.parameters(), straight[0].parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_nested_checkpoint_names_and_bad_layouts(tmp_path):
    path = tmp_path / "n.npz"
    opgraph.save({"a": {"b": np.ones(1)}, "a/b": np.zeros(2), "k": {1: [np.arange(2)]}}, path)
    loaded = opgraph.load(path)
    assert loaded["a"]["b"].shape == (1,) and loaded["a/b"].shape == (2,)
    assert loaded["k"][1][0].dtype == np.int64
    with pytest.raises(TypeError, match=r"save: 'x/0' is a set; a checkpoint holds tensors"):
        opgraph.save({"x": [{1, 2}]}, path)
    with pytest.raises(TypeError, match=r"save: key 1\.5 in x is not a str or an int"):
        opgraph.save({"x": {1.5: 1}}, path)
    for layout in (b"{not json", b'{"$dict": [[1.5, 2]]}', b'{"$array": "missing"}',
                   b'{"$what": 1}', b"[" * 100000 + b"]" * 100000):
        _zip(path, [("__opgraph_structure__.npy",
                    _npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (%d,), }"
                               % len(layout), layout))])
        with pytest.raises(ValueError, match=r"the checkpoint layout \(__opgraph_structure__\) "
                                             "is corrupt"):
            opgraph.load(path)
