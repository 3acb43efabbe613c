#!/usr/bin/env python3
"""Regenerates the seed corpus in fuzz/corpus/image_loader/.

Image format (all ints 32-bit big-endian): version int (1), then records
`length type class nSlots slot* payload` until EOF. See src/image/mod.rs.

File names matter: tests/fuzz_corpus.rs expects `ok_*` seeds to load and
`bad_*` seeds to be rejected with an error.
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus", "image_loader")


def ints(*values):
    return b"".join(struct.pack(">i", v) for v in values)


def minimal_records():
    # 7 pointer roots (length 4, type 2, class 3, no slots), then 10 SmallInts 0..9 (class 6).
    recs = [ints(4, 2, 3, 0) for _ in range(7)]
    recs += [ints(5, 0, 6, 0, i) for i in range(10)]
    return recs


def image(extra=(), version=1):
    return ints(version) + b"".join(minimal_records()) + b"".join(extra)


def main():
    payload = b"hello"
    hi, lo = struct.unpack(">II", struct.pack(">d", 1.5))
    hi, lo = [struct.unpack(">i", struct.pack(">I", x))[0] for x in (hi, lo)]
    minimal = image()
    seeds = {
        "ok_minimal.bin": minimal,
        # Byte object: length = 4 header ints + number of payload bytes, then the raw bytes.
        "ok_byte_object.bin": image([ints(4 + len(payload), 1, 3, 0) + payload]),
        # Float (tracevm extension): [6, 3, class, 0, hi, lo].
        "ok_float.bin": image([ints(6, 3, 3, 0, hi, lo)]),
        "bad_empty.bin": b"",
        "bad_version.bin": image(version=2),
        # Cut in the middle of the last SmallInt record (inside its value int).
        "bad_truncated.bin": minimal[:-2],
        "bad_unknown_type.bin": image([ints(5, 9, 0, 0, 0)]),
        "bad_reference.bin": image([ints(5, 2, 3, 1, 999)]),
        "bad_huge_length.bin": image([ints(0x7FFFFFFF, 2, 3, 0x7FFFFFFF - 4)]),
        "bad_huge_bytes.bin": image([ints(0x7FFFFFFF, 1, 3, 0)]),
    }
    os.makedirs(OUT, exist_ok=True)
    for name, data in seeds.items():
        assert len(data) < 2048, name
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
