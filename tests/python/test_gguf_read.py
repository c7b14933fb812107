"""rotary.gguf.read_metadata: GGUF files written here with llama.cpp's own writer (gguf.GGUFWriter) are
read back to the values written, spelled out below (a float32 as the double it is exactly); hostile
files (truncated at every length, wrong magic or version, counts no file could hold, a tensor of
another type) are refused with rotary.Error on argument "path", quickly and without another
exception; and the file is closed and unmapped once the call returns or raises."""

import importlib.metadata
import os
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

gguf = pytest.importorskip("gguf", reason='rotary.gguf needs the gguf package (pip install "rotary[gguf]")')

import rotary  # noqa: E402
import rotary.gguf  # noqa: E402

# GGUF value type codes (llama.cpp ggml/include/gguf.h, enum gguf_type), for files built byte by byte.
UINT8, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64 = 0, 5, 6, 7, 8, 9, 10

LLAMA_FREQS = np.linspace(1.0, 8.0, 64, dtype=np.float32)  # 64 = dimension_count / 2
PHI3_LONG = np.linspace(1.0, 40.0, 48, dtype=np.float32)
PHI3_SHORT = np.linspace(1.0, 1.5, 48, dtype=np.float32)


def write_gguf(path, arch, add_keys, tensors=()):
    """A GGUF file at `path` written by gguf.GGUFWriter: `add_keys(writer)`, then (name, array) tensors."""
    writer = gguf.GGUFWriter(str(path), arch)
    add_keys(writer)
    for name, values in tensors:
        writer.add_tensor(name, values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def llama_keys(w):
    w.add_context_length(131072)
    w.add_key_length(128)
    w.add_rope_dimension_count(128)
    w.add_rope_freq_base(500000.0)
    w.add_rope_scaling_attn_factors(1.0)


@pytest.fixture
def llama_file(tmp_path):
    return write_gguf(tmp_path / "llama.gguf", "llama", llama_keys, [("rope_freqs.weight", LLAMA_FREQS)])


def gguf_string(text):
    data = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(data)) + data


def key_value(key, value_type, payload):
    return gguf_string(key) + struct.pack("<I", value_type) + payload


ARCHITECTURE = key_value("general.architecture", STRING, gguf_string("llama"))


def raw_gguf(path, key_values, version=3, tensor_count=0):
    """A GGUF file built byte by byte: the header, then the key/values (no tensors)."""
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", version, tensor_count, len(key_values)) + b"".join(key_values))
    return path


def refused(path, *fragments, code="parse_error"):
    """read_metadata(path) raises rotary.Error on "path" naming the file and every fragment."""
    with pytest.raises(rotary.Error) as caught:
        rotary.gguf.read_metadata(path)
    error = caught.value
    assert error.argument == "path"
    assert error.code == code
    assert str(path) in str(error)
    for fragment in fragments:
        assert fragment in str(error)
    return error


# ---- files written by llama.cpp's writer, read back ----------------------------------------


def test_llama_file_with_rope_freqs(llama_file):
    metadata = rotary.gguf.read_metadata(llama_file)
    assert metadata.architecture == "llama"
    assert metadata.keys == {
        "general.architecture": "llama",
        "llama.context_length": 131072,
        "llama.attention.key_length": 128,
        "llama.rope.dimension_count": 128,
        "llama.rope.freq_base": 500000.0,
        "llama.rope.scaling.attn_factor": 1.0,
    }
    assert list(metadata.rope_tensors) == ["rope_freqs"]
    freqs = metadata.rope_tensors["rope_freqs"]
    assert freqs.dtype == np.float32 and freqs.shape == (64,)
    np.testing.assert_array_equal(freqs, LLAMA_FREQS)
    assert not freqs.flags.writeable
    with pytest.raises(AttributeError):  # frozen
        metadata.architecture = "qwen2"


def test_qwen2_yarn_file(tmp_path):
    def keys(w):
        w.add_context_length(131072)
        w.add_rope_freq_base(1000000.0)
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(4.0)
        w.add_rope_scaling_orig_ctx_len(32768)
        w.add_rope_scaling_yarn_log_mul(0.1)
        w.add_rope_scaling_finetuned(False)

    metadata = rotary.gguf.read_metadata(write_gguf(tmp_path / "qwen2.gguf", "qwen2", keys))
    assert metadata.architecture == "qwen2"
    assert metadata.keys == {
        "general.architecture": "qwen2",
        "qwen2.context_length": 131072,
        "qwen2.rope.freq_base": 1000000.0,
        "qwen2.rope.scaling.type": "yarn",
        "qwen2.rope.scaling.factor": 4.0,
        "qwen2.rope.scaling.original_context_length": 32768,
        "qwen2.rope.scaling.yarn_log_multiplier": 0.10000000149011612,  # float32(0.1), as stored
        "qwen2.rope.scaling.finetuned": False,
    }
    assert type(metadata.keys["qwen2.rope.scaling.finetuned"]) is bool
    assert metadata.rope_tensors == {}


def test_phi3_file_with_long_and_short_factors(tmp_path):
    def keys(w):
        w.add_context_length(131072)
        w.add_rope_dimension_count(96)
        w.add_rope_scaling_orig_ctx_len(4096)
        w.add_rope_scaling_attn_factors(1.1902380714238083)

    tensors = [("rope_factors_long.weight", PHI3_LONG), ("rope_factors_short.weight", PHI3_SHORT)]
    metadata = rotary.gguf.read_metadata(write_gguf(tmp_path / "phi3.gguf", "phi3", keys, tensors))
    assert metadata.architecture == "phi3"
    assert metadata.keys["phi3.rope.scaling.attn_factor"] == 1.190238118171692  # the float32 stored
    assert metadata.keys["phi3.rope.scaling.original_context_length"] == 4096
    assert metadata.keys["phi3.rope.dimension_count"] == 96
    assert sorted(metadata.rope_tensors) == ["rope_factors_long", "rope_factors_short"]
    np.testing.assert_array_equal(metadata.rope_tensors["rope_factors_long"], PHI3_LONG)
    np.testing.assert_array_equal(metadata.rope_tensors["rope_factors_short"], PHI3_SHORT)


def test_qwen2vl_dimension_sections_are_a_tuple_of_ints(tmp_path):
    def keys(w):
        w.add_rope_dimension_count(128)
        w.add_rope_dimension_sections([16, 24, 24, 0])  # written as an array of int32

    metadata = rotary.gguf.read_metadata(write_gguf(tmp_path / "qwen2vl.gguf", "qwen2vl", keys))
    sections = metadata.keys["qwen2vl.rope.dimension_sections"]
    assert sections == (16, 24, 24, 0)
    assert all(type(s) is int for s in sections)


def test_every_value_type(tmp_path):
    types = gguf.GGUFValueType

    def keys(w):
        w.add_uint8("t.uint8", 255)
        w.add_int8("t.int8", -128)
        w.add_uint16("t.uint16", 65535)
        w.add_int16("t.int16", -32768)
        w.add_uint32("t.uint32", 4294967295)
        w.add_int32("t.int32", -2147483648)
        w.add_uint64("t.uint64", 9223372036854775807)  # the largest kept: INT64_MAX
        w.add_int64("t.int64", -9223372036854775808)
        w.add_float32("t.float32", 0.3)
        w.add_float64("t.float64", 0.3)
        w.add_bool("t.bool", True)
        w.add_string("t.string", "Grüße")
        w.add_key_value("t.uint64s", [1, 9223372036854775807], types.ARRAY, types.UINT64)
        w.add_key_value("t.int8s", [-1, 2], types.ARRAY, types.INT8)
        w.add_key_value("t.float32s", [0.3, -2.0], types.ARRAY, types.FLOAT32)
        w.add_key_value("t.float64s", [0.3, -2.0], types.ARRAY, types.FLOAT64)
        w.add_key_value("t.bools", [True, False], types.ARRAY, types.BOOL)

    keys_read = rotary.gguf.read_metadata(write_gguf(tmp_path / "types.gguf", "llama", keys)).keys
    expected = {
        "t.uint8": 255,
        "t.int8": -128,
        "t.uint16": 65535,
        "t.int16": -32768,
        "t.uint32": 4294967295,
        "t.int32": -2147483648,
        "t.uint64": 9223372036854775807,
        "t.int64": -9223372036854775808,
        "t.float32": 0.30000001192092896,
        "t.float64": 0.3,
        "t.bool": True,
        "t.string": "Grüße",
        "t.uint64s": (1, 9223372036854775807),
        "t.int8s": (-1, 2),
        "t.float32s": (0.30000001192092896, -2.0),
        "t.float64s": (0.3, -2.0),
        "t.bools": (1, 0),  # as the C++ reader: bool elements become integers
    }
    assert {k: v for k, v in keys_read.items() if k.startswith("t.")} == expected
    for key, value in expected.items():  # == holds between 1 and True, 1 and 1.0: the types too
        got = keys_read[key]
        assert type(got) is type(value), key
        if isinstance(value, tuple):
            assert [type(v) for v in got] == [type(v) for v in value], key


def test_string_arrays_and_nested_arrays_are_dropped_and_what_follows_is_read(tmp_path):
    types = gguf.GGUFValueType

    def keys(w):
        w.add_token_list([f"token{i}" for i in range(1000)])
        w.add_key_value("t.nested", [[1, 2], [3]], types.ARRAY, types.ARRAY)
        w.add_context_length(4096)

    metadata = rotary.gguf.read_metadata(write_gguf(tmp_path / "vocab.gguf", "llama", keys))
    assert metadata.keys == {"general.architecture": "llama", "llama.context_length": 4096}


def test_a_large_vocabulary_is_read_quickly(tmp_path):
    # gguf.GGUFReader alone takes seconds here: it builds every element of every array.
    n = 100_000

    def keys(w):
        w.add_token_list([f"token{i}" for i in range(n)])
        w.add_token_merges([f"a{i} b{i}" for i in range(n)])
        w.add_token_types([1] * n)
        w.add_context_length(4096)

    path = write_gguf(tmp_path / "vocab.gguf", "qwen2", keys)
    start = time.perf_counter()
    metadata = rotary.gguf.read_metadata(path)
    elapsed = time.perf_counter() - start
    assert metadata.keys["tokenizer.ggml.token_type"] == (1,) * n  # a numeric array: kept
    assert "tokenizer.ggml.tokens" not in metadata.keys and "tokenizer.ggml.merges" not in metadata.keys
    assert metadata.keys["qwen2.context_length"] == 4096
    assert elapsed < 3, f"{elapsed:.2f} s"  # about 0.1 s; gguf.GGUFReader alone about 10 s


def test_arrays_over_the_kept_size_are_dropped(tmp_path):
    n = (1 << 20) + 1
    big = key_value("t.big", ARRAY, struct.pack("<IQ", UINT8, n) + bytes(n))
    after = key_value("t.after", INT32, struct.pack("<i", -7))
    metadata = rotary.gguf.read_metadata(raw_gguf(tmp_path / "big.gguf", [ARCHITECTURE, big, after]))
    assert metadata.keys == {"general.architecture": "llama", "t.after": -7}


def test_path_like_and_str(llama_file):
    assert rotary.gguf.read_metadata(str(llama_file)).keys == rotary.gguf.read_metadata(llama_file).keys


# ---- hostile files ---------------------------------------------------------------------------


def test_every_truncation_is_refused(llama_file):
    data = llama_file.read_bytes()
    cut = llama_file.parent / "cut.gguf"
    for length in range(len(data)):  # every length of the 576-byte file (about 2 s in all)
        cut.write_bytes(data[:length])
        with pytest.raises(rotary.Error) as caught:
            rotary.gguf.read_metadata(cut)
        assert caught.value.argument == "path", length
        assert "not a readable GGUF file" in str(caught.value), length


def test_header_refusals(llama_file, tmp_path):
    data = bytearray(llama_file.read_bytes())
    bad = tmp_path / "bad.gguf"

    def patched(offset, value):
        copy = bytearray(data)
        copy[offset : offset + len(value)] = value
        bad.write_bytes(copy)
        return bad

    refused(patched(0, b"GGML"), "magic b'GGML'")
    refused(patched(4, struct.pack("<I", 1)), "version 1, expected 2 or 3")
    refused(patched(4, struct.pack(">I", 3)), "big-endian")
    bad.write_bytes(b"")
    refused(bad, "0 bytes, shorter than the 24-byte GGUF header")
    assert rotary.gguf.read_metadata(patched(4, struct.pack("<I", 2))).architecture == "llama"  # version 2 reads


@pytest.mark.parametrize("offset,name", [(8, "tensor_count"), (16, "kv_count")])
def test_counts_no_file_could_hold_are_refused_at_once(llama_file, offset, name):
    data = bytearray(llama_file.read_bytes())
    data[offset : offset + 8] = struct.pack("<Q", 10**10)
    llama_file.write_bytes(data)
    start = time.perf_counter()
    refused(llama_file, f"{name} 10000000000")
    assert time.perf_counter() - start < 1


def test_an_array_claiming_more_elements_than_the_file_holds(tmp_path):
    # gguf.GGUFReader alone reads past the end as empty arrays and loops over the 10^12 elements.
    for element in (UINT8, STRING, ARRAY):
        claim = key_value("t.claim", ARRAY, struct.pack("<IQ", element, 10**12))
        start = time.perf_counter()
        refused(raw_gguf(tmp_path / "claim.gguf", [ARCHITECTURE, claim]), "1000000000000")
        assert time.perf_counter() - start < 1


def test_a_string_longer_than_the_file(tmp_path):
    long = struct.pack("<Q", 10**15) + b"x"  # a length, then one byte
    refused(raw_gguf(tmp_path / "s.gguf", [ARCHITECTURE, key_value("t.s", STRING, long)]), "past the end")


def test_values_outside_the_rules_are_refused(tmp_path):
    over = key_value("t.over", UINT64, struct.pack("<Q", 1 << 63))
    refused(raw_gguf(tmp_path / "u.gguf", [ARCHITECTURE, over]), "'t.over'", "9223372036854775808")
    bool2 = key_value("t.bool", BOOL, b"\x02")
    refused(raw_gguf(tmp_path / "b.gguf", [ARCHITECTURE, bool2]), "'t.bool'", "stored as 2")
    latin1 = key_value("t.text", STRING, gguf_string(b"Gr\xfc\xdfe"))
    refused(raw_gguf(tmp_path / "t.gguf", [ARCHITECTURE, latin1]), "'t.text'", "not UTF-8")
    refused(raw_gguf(tmp_path / "a.gguf", [key_value("t.x", INT32, bytes(4))]), "general.architecture")
    unknown = key_value("t.x", 99, bytes(4))
    refused(raw_gguf(tmp_path / "k.gguf", [ARCHITECTURE, unknown]), "99")


def test_the_readers_own_refusals_are_wrapped_with_its_message(tmp_path):
    refused(
        raw_gguf(tmp_path / "twice.gguf", [ARCHITECTURE, ARCHITECTURE]), "Duplicate general.architecture", "KeyError"
    )
    alignment = key_value("general.alignment", INT32, struct.pack("<i", 32))  # llama.cpp wants a uint32
    refused(raw_gguf(tmp_path / "align.gguf", [ARCHITECTURE, alignment]), "Bad type for general.alignment field")


def test_rope_tensor_of_another_type_is_refused_by_name(tmp_path):
    path = write_gguf(
        tmp_path / "f16.gguf", "llama", llama_keys, [("rope_freqs.weight", LLAMA_FREQS.astype(np.float16))]
    )
    refused(path, "'rope_freqs.weight'", "F16", "expected F32")


def tensor_info_at(data, name):
    """The byte offset of the ggml type in the tensor info of `name` (after its name, n_dims and dims)."""
    start = data.index(gguf_string(name)) + 8 + len(name)
    (n_dims,) = struct.unpack_from("<I", data, start)
    return start + 4 + 8 * n_dims


def test_other_tensors_are_not_read(tmp_path):
    # Only the RoPE tensors are: another tensor's type may be newer than the gguf package knows.
    embedding = np.arange(32, dtype=np.float32).reshape(4, 8)
    tensors = [("token_embd.weight", embedding), ("rope_freqs.weight", LLAMA_FREQS)]
    path = write_gguf(tmp_path / "two.gguf", "llama", llama_keys, tensors)
    data = bytearray(path.read_bytes())
    type_at = tensor_info_at(data, "token_embd.weight")
    data[type_at : type_at + 4] = struct.pack("<I", 1000)  # no ggml type
    path.write_bytes(data)
    metadata = rotary.gguf.read_metadata(path)
    np.testing.assert_array_equal(metadata.rope_tensors["rope_freqs"], LLAMA_FREQS)


def test_a_rope_tensor_off_the_alignment_is_refused(llama_file):
    data = bytearray(llama_file.read_bytes())
    offset_at = tensor_info_at(data, "rope_freqs.weight") + 4  # after the type
    assert struct.unpack_from("<Q", data, offset_at) == (0,)
    data[offset_at : offset_at + 8] = struct.pack("<Q", 4)
    llama_file.write_bytes(data + bytes(4))
    refused(llama_file, "'rope_freqs.weight' has data offset 4, expected a multiple of 32")


def test_per_layer_and_non_finite_rope_tensors_are_refused(tmp_path):
    per_layer = write_gguf(tmp_path / "blk.gguf", "llama", llama_keys, [("blk.0.rope_freqs.weight", LLAMA_FREQS)])
    refused(per_layer, "'blk.0.rope_freqs.weight'", "per layer")
    nan = LLAMA_FREQS.copy()
    nan[5] = np.nan
    refused(write_gguf(tmp_path / "nan.gguf", "llama", llama_keys, [("rope_freqs.weight", nan)]), "[5] is nan")


def test_missing_file_directory_and_special_files(tmp_path):
    refused(tmp_path / "absent.gguf", "no such file", code="io_error")
    refused(tmp_path, "a directory", code="io_error")
    if os.path.exists("/dev/zero"):
        refused("/dev/zero", "not a regular file", code="io_error")
    fifo = tmp_path / "fifo.gguf"
    if hasattr(os, "mkfifo"):
        os.mkfifo(fifo)  # opening it would wait for a writer
        refused(fifo, "not a regular file", code="io_error")


# ---- the file is let go; the package is optional ---------------------------------------------


def open_descriptors():
    return len(os.listdir("/proc/self/fd"))


def mapped(path):
    with open("/proc/self/maps") as maps:
        return str(path) in maps.read()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc/self (Linux)")
def test_the_file_is_closed_and_unmapped_after_success_and_failure(llama_file, tmp_path):
    before = open_descriptors()
    metadata = rotary.gguf.read_metadata(llama_file)
    assert open_descriptors() == before and not mapped(llama_file)
    os.remove(llama_file)  # nothing holds it (on Windows a mapped file could not be removed)
    assert metadata.rope_tensors["rope_freqs"][1] == LLAMA_FREQS[1]  # a copy, alive without the file

    f16 = write_gguf(
        tmp_path / "f16.gguf", "llama", llama_keys, [("rope_freqs.weight", LLAMA_FREQS.astype(np.float16))]
    )
    with pytest.raises(rotary.Error) as caught:  # the error is kept alive: it must not hold the map
        rotary.gguf.read_metadata(f16)
    assert open_descriptors() == before and not mapped(f16)
    assert caught.value.__traceback__ is not None
    f16.write_bytes(f16.read_bytes()[:100])  # truncated: refused inside gguf.GGUFReader
    with pytest.raises(rotary.Error):
        rotary.gguf.read_metadata(f16)
    assert open_descriptors() == before and not mapped(f16)


def test_without_the_gguf_package_the_error_names_the_extra(monkeypatch, llama_file):
    monkeypatch.setitem(sys.modules, "gguf", None)  # `import gguf` now raises ImportError
    with pytest.raises(rotary.Error, match=r'gguf package: pip install "rotary\[gguf\]"') as caught:
        rotary.gguf.read_metadata(llama_file)
    assert caught.value.argument == "path"


@pytest.mark.parametrize("version", ["0.18.0", "0.20.0"])
def test_another_gguf_version_is_refused_by_name(monkeypatch, llama_file, version):
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: version if name == "gguf" else real(name))
    with pytest.raises(
        rotary.Error, match=rf'works with gguf 0.19.0 .*found gguf {version}: pip install "rotary\[gguf\]"'
    ):
        rotary.gguf.read_metadata(llama_file)


def test_rotary_and_rotary_gguf_import_without_the_gguf_package():
    code = "import sys; sys.modules['gguf'] = None; import rotary, rotary.gguf; print(rotary.gguf.ROPE_TENSORS[0])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "rope_freqs"
