# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of zato.proto.wsmask: the same public API, 8 bytes at a time.

zato/proto/wsmask.py is the specification; read it first. Here the payload is read through the buffer
protocol (bytes directly, without even that), XOR-ed as 64-bit words with the key repeated to 8 bytes,
and the last 0-7 bytes one by one. Words are moved with memcpy, which the compiler turns into plain
unaligned loads and stores, so nothing depends on how the payload happens to be aligned.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy

__all__ = ['mask']


cdef inline void _xor(const unsigned char* src, unsigned char* dst, Py_ssize_t size,
                      const unsigned char* key) noexcept nogil:
    cdef uint32_t key32
    cdef uint64_t key64, word
    cdef Py_ssize_t i = 0
    memcpy(&key32, key, 4)
    key64 = (<uint64_t>key32 << 32) | key32
    # Four words per round give the compiler room to use vector registers
    while i + 32 <= size:
        memcpy(&word, src + i, 8); word ^= key64; memcpy(dst + i, &word, 8)
        memcpy(&word, src + i + 8, 8); word ^= key64; memcpy(dst + i + 8, &word, 8)
        memcpy(&word, src + i + 16, 8); word ^= key64; memcpy(dst + i + 16, &word, 8)
        memcpy(&word, src + i + 24, 8); word ^= key64; memcpy(dst + i + 24, &word, 8)
        i += 32
    while i + 8 <= size:
        memcpy(&word, src + i, 8); word ^= key64; memcpy(dst + i, &word, 8)
        i += 8
    # i is a multiple of 8 here, so the key lines up with i & 3
    while i < size:
        dst[i] = src[i] ^ key[i & 3]
        i += 1


cdef bytes _mask(const unsigned char* src, Py_ssize_t size, const unsigned char* key):
    cdef bytes out = PyBytes_FromStringAndSize(NULL, size)
    _xor(src, <unsigned char*>PyBytes_AS_STRING(out), size, key)
    return out


def mask(data, key):
    """Returns ``data`` XOR-ed with the 4-byte ``key`` repeated; empty data gives ``b''``."""
    cdef Py_buffer dbuf
    cdef Py_buffer kbuf
    cdef unsigned char k[4]
    if PyBytes_CheckExact(key) and PyBytes_GET_SIZE(key) == 4:
        memcpy(k, PyBytes_AS_STRING(key), 4)
    else:
        PyObject_GetBuffer(key, &kbuf, PyBUF_SIMPLE)
        try:
            if kbuf.len != 4:
                raise ValueError(f'a WebSocket masking key has 4 bytes, not {kbuf.len}')
            memcpy(k, kbuf.buf, 4)
        finally:
            PyBuffer_Release(&kbuf)
    if PyBytes_CheckExact(data):
        return _mask(<const unsigned char*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), k)
    PyObject_GetBuffer(data, &dbuf, PyBUF_SIMPLE)
    try:
        return _mask(<const unsigned char*>dbuf.buf, dbuf.len, k)
    finally:
        PyBuffer_Release(&dbuf)
